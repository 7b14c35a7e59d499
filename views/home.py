"""The home page: a getting-started checklist on a new install; Money waiting (accepted estimates
not scheduled, open estimates, invoices past due, payments this month); overnight activity, the
latest replies and today's to-dos; yesterday's campaign numbers; today's sending against each
number's limit, running campaigns, conversations waiting for a reply, running imports and opt-outs
this week."""
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

from flask import current_app, g
from flask_appbuilder import IndexView, expose

from app import analytics, display, home, money, schedule, webhook_health
from app.security import current_user_scope


class HomeView(IndexView):
    index_template = "home.html"

    @expose("/")
    def index(self):
        if not getattr(g.user, "is_authenticated", False):
            return self.render_template("appbuilder/index.html")
        now = datetime.now(timezone.utc)
        today = schedule.day_bounds_utc(now, current_app.config["CAMPAIGN_TIMEZONE"])
        scope = current_user_scope()
        board = analytics.dashboard(today, user_id=scope)
        zone = ZoneInfo(current_app.config["CAMPAIGN_TIMEZONE"])
        local_today = now.astimezone(zone).date()
        overnight = analytics.overnight_activity(now, current_app.config["CAMPAIGN_TIMEZONE"], scope)
        overnight_since_local = display.overnight(overnight["since"], overnight["until"],
                                                  current_app.config["CAMPAIGN_TIMEZONE"])
        return self.render_template(self.index_template, appbuilder=self.appbuilder, board=board,
                                    scoped=scope is not None, money=analytics.money_waiting(local_today, scope),
                                    quickbooks=money.quickbooks_status(),
                                    todos=analytics.todays_todos(local_today, scope),
                                    overnight=overnight, overnight_since_local=overnight_since_local,
                                    sync=money.last_sync(),
                                    replies=home.recent_replies(scope), yesterday=home.yesterday_campaigns(now, scope),
                                    getting_started=None if scope is not None else home.getting_started(),
                                    last_webhook_at=webhook_health.last_webhook_at(),
                                    webhook_silence=webhook_health.silence_warning())
