"""The one place that registers every view and API with Flask-AppBuilder."""
from flask import current_app

from views import (
    api,
    audit,
    campaigns,
    contacts,
    display,
    health,
    imports,
    layout,
    media,
    messages,
    money,
    opt_outs,
    settings,
    webhooks,
)


def register(appbuilder):
    display.install(current_app)
    layout.register(appbuilder)
    contacts.register(appbuilder)
    opt_outs.register(appbuilder)
    audit.register(appbuilder)
    api.register(appbuilder)
    health.register(appbuilder)
    webhooks.register(appbuilder)
    messages.register(appbuilder)
    campaigns.register(appbuilder)
    imports.register(appbuilder)
    settings.register(appbuilder)
    money.register(appbuilder)
    media.register(appbuilder)
    from views import exports, search

    exports.register(appbuilder)
    search.register(appbuilder)
    from views import navigation

    navigation.arrange(appbuilder.menu)  # last: every view has added its menu item
