"""What the domain needs from the outside, as Protocols: the agent runtime, and storage through one unit of work
per use case."""
