"""The SDK's resources, each naming its routes once; `Chowder` and `AsyncChowder` subclass them with their own
sender (`endpoints.py`), adding only what reads an answer as it arrives or polls."""

from __future__ import annotations

from chowder.client import agent_routes as agent
from chowder.client import backup_routes as backups
from chowder.client import routes
from chowder.client import session_routes as sessions
from chowder.client import webhooks as hooks
from chowder.client.endpoints import endpoint


class OrganizationRoutes:
    signup = endpoint(routes.signup)
    get = endpoint(routes.get_organization)
    update = endpoint(routes.update_organization)
    usage = endpoint(routes.organization_usage)
    usage_page = endpoint(routes.organization_usage_page)
    audit = endpoint(routes.audit)
    audit_page = endpoint(routes.audit_page)


class SubscriptionRoutes:
    get = endpoint(routes.get_subscription)
    checkout = endpoint(routes.checkout)
    portal = endpoint(routes.portal)


class KeysRoutes:
    create = endpoint(routes.create_key)
    list = endpoint(routes.list_keys)
    list_page = endpoint(routes.keys_page)
    get = endpoint(routes.get_key)
    update = endpoint(routes.update_key)
    revoke = endpoint(routes.revoke_key)


class InstancesRoutes:
    create = endpoint(routes.create_instance)
    list = endpoint(routes.list_instances)
    list_page = endpoint(routes.instances_page)
    get = endpoint(routes.get_instance)
    status = endpoint(routes.instance_status)
    update = endpoint(routes.update_instance)
    upgrade = endpoint(routes.upgrade_instance)
    delete = endpoint(routes.delete_instance)
    start = endpoint(routes.start_instance)
    stop = endpoint(routes.stop_instance)
    recover = endpoint(routes.recover_instance)
    restore = endpoint(routes.restore_instance)
    usage = endpoint(routes.instance_usage)
    usage_page = endpoint(routes.instance_usage_page)


class ResponsesRoutes:
    create = endpoint(agent.respond)


class FilesRoutes:
    list = endpoint(agent.list_files)
    read = endpoint(agent.read_file)
    write = endpoint(agent.write_file)
    upload = endpoint(agent.upload_file)
    move = endpoint(agent.move_file)
    delete = endpoint(agent.delete_file)
    mkdir = endpoint(agent.make_directory)


class ChannelsRoutes:
    list = endpoint(agent.list_channels)
    info = endpoint(agent.channel_info)
    status = endpoint(agent.channel_status)
    connect = endpoint(agent.connect_channel)
    disconnect = endpoint(agent.disconnect_channel)
    pair = endpoint(agent.pair_channel)


class WebhooksRoutes:
    create = endpoint(hooks.create_webhook_endpoint)
    list = endpoint(hooks.list_webhook_endpoints)
    get = endpoint(hooks.get_webhook_endpoint)
    delete = endpoint(hooks.delete_webhook_endpoint)
    deliveries = endpoint(hooks.webhook_deliveries)


class SessionsRoutes:
    list = endpoint(sessions.list_sessions)
    get = endpoint(sessions.get_session)
    delete = endpoint(sessions.delete_session)
    export = endpoint(sessions.export_session)
    import_ = endpoint(sessions.import_session)


class BackupsRoutes:
    create = endpoint(backups.create_backup)
    list = endpoint(backups.list_backups)
    get = endpoint(backups.get_backup)
    delete = endpoint(backups.delete_backup)


class SkillsRoutes:
    list = endpoint(agent.list_skills)
    info = endpoint(agent.skill_info)
    install = endpoint(agent.install_skill)
    update = endpoint(agent.update_skill)
