"""The requests of the Open Responses compliance suite (openresponses.org, `compliance-tests.ts`): each test's
body, whether it streams, and the output it must hold besides passing the `openresponses-types` models."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# The suite's image: a 32×32 PNG of a red heart.
RED_HEART_PNG = (
    "iVBORw0KGgoAAAANSUhEUgAAACAAAAAgCAIAAAD8GO2jAAABmklEQVR42tyWAaTyUBzFew/eG4AHz+MBSAHKBiJRGFKwIgQQJKLUIioBIhCA"
    "iCAAEizAQIAECaASqFFJq84nudjnaqvuPnxzgP9xfrq5938csPn7PwHTKSoViCIEAYEAMhmoKsU2mUCWEQqB5xEMIp/HaGQG2G6RSuH9HQ7H"
    "34rFrtPbdz4jl6PbwmEsl3QA1mt4vcRKk8dz9eg6IpF7tt9fzGY0gCgafFRFo5Blc5vLhf3eCOj1yNhM5GRMVK0aATxPZoz09YXjkQDmczJg"
    "quGQAPp9WwCNBgG027YACgUC6HRsAZRKBDAY2AJoNv/ZnwzA6WScznG3p4UAymXGAEkyXrTFAh8fLAGqagQAyGaZpYsi7bHTNPz8MEj//Lxu"
    "FPo+UBS8vb0KaLXubrRa7aX0RMLCykwmn0z3+XA4WACcTpCkh9MFAZpmuVXo+mO/w+/HZvNgbblcUCxaSo/Hyck80Yu6XXDcvfVZr79cvMZj"
    "uN2U9O9vKAqjZrfbIZ0mV4TUi9Xqz6jddNy//7+e3n8Fhf/Llo2kxi8AQyGRoDkmAhAAAAAASUVORK5CYII="
)
WEATHER_TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "Get the current weather for a location",
    "parameters": {
        "type": "object",
        "properties": {
            "location": {"type": "string", "description": "The city and state, e.g. San Francisco, CA"},
        },
        "required": ["location"],
    },
}
WEATHER_QUESTION = {"type": "message", "role": "user", "content": "What's the weather like in San Francisco?"}
FUNCTION_CALL_EVENTS = (
    "response.output_item.added",
    "response.function_call_arguments.delta",
    "response.function_call_arguments.done",
    "response.output_item.done",
)


@dataclass(frozen=True)
class ComplianceTest:
    id: str
    input: list[dict[str, Any]]
    stream: bool = False
    tools: tuple[dict[str, Any], ...] = ()
    # The output item type the answer must hold, besides being `completed` with some output.
    output_type: str = "message"

    def body(self, model: str) -> dict[str, Any]:
        body: dict[str, Any] = {"model": model, "input": self.input, "stream": self.stream}
        return {**body, "tools": list(self.tools)} if self.tools else body


COMPLIANCE_TESTS = (
    ComplianceTest("basic-response", [{"type": "message", "role": "user", "content": "Say hello in exactly 3 words."}]),
    ComplianceTest("streaming-response", [{"type": "message", "role": "user", "content": "Count from 1 to 5."}], True),
    ComplianceTest(
        "system-prompt",
        [
            {"type": "message", "role": "system", "content": "You are a pirate. Always respond in pirate speak."},
            {"type": "message", "role": "user", "content": "Say hello."},
        ],
    ),
    ComplianceTest("tool-calling", [WEATHER_QUESTION], tools=(WEATHER_TOOL,), output_type="function_call"),
    ComplianceTest(
        "tool-calling-streaming", [WEATHER_QUESTION], True, tools=(WEATHER_TOOL,), output_type="function_call"
    ),
    ComplianceTest(
        "image-input",
        [
            {
                "type": "message",
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "What do you see in this image? Answer in one sentence."},
                    {"type": "input_image", "image_url": f"data:image/png;base64,{RED_HEART_PNG}"},
                ],
            }
        ],
    ),
    ComplianceTest(
        "multi-turn",
        [
            {"type": "message", "role": "user", "content": "My name is Alice."},
            {
                "type": "message",
                "role": "assistant",
                "content": "Hello Alice! Nice to meet you. How can I help you today?",
            },
            {"type": "message", "role": "user", "content": "What is my name?"},
        ],
    ),
)
