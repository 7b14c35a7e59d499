"""The one place that registers every view and API with Flask-AppBuilder."""


def register(appbuilder):
    from views import api, audit, contacts, health, opt_outs

    contacts.register(appbuilder)
    opt_outs.register(appbuilder)
    audit.register(appbuilder)
    api.register(appbuilder)
    health.register(appbuilder)
    from views import messages

    messages.register(appbuilder)
    from views import campaigns

    campaigns.register(appbuilder)
    from views import imports

    imports.register(appbuilder)
    from views import settings

    settings.register(appbuilder)
    from views import money

    money.register(appbuilder)
    from views import media

    media.register(appbuilder)
