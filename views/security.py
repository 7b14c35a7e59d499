"""Flask-AppBuilder's password screens with the password policy (app/users.py): changing your
own password asks for the current one; an admin's add-user and reset-password screens check
the policy against the user's name. The classes keep FAB's names, so their permissions and
URLs stay FAB's; config.SECURITY_VIEWS hands them to the security manager."""
from flask import abort, flash, g, request
from flask_appbuilder._compat import as_unicode
from flask_appbuilder.fieldwidgets import BS3PasswordFieldWidget
from flask_appbuilder.forms import DynamicForm
from flask_appbuilder.security import views as fab
from werkzeug.security import check_password_hash
from wtforms import PasswordField
from wtforms.validators import DataRequired, EqualTo, ValidationError

from app.extensions import appbuilder
from app.users import MIN_PASSWORD_LENGTH, check_password, password_problem
from views.display import PlainViewMixin

POLICY = (f"At least {MIN_PASSWORD_LENGTH} characters; not one of the most common passwords and not the "
          "user name. A few unrelated words make a good one.")


class PasswordPolicy:
    """WTForms validator: the password policy, with the user name the form is about."""

    def __init__(self, username_of):
        self.username_of = username_of

    def __call__(self, form, field):
        problem = password_problem(field.data, self.username_of(form))
        if problem:
            raise ValidationError(problem)


def password_field(username_of, label="New password"):
    return PasswordField(label, description=POLICY, widget=BS3PasswordFieldWidget(),
                         validators=[DataRequired(), PasswordPolicy(username_of)])


def confirm_field(label="Confirm new password"):
    return PasswordField(label, widget=BS3PasswordFieldWidget(),
                         validators=[DataRequired(), EqualTo("password", message="The two passwords differ.")])


def _current_password_is_right(form, field):
    if not check_password_hash(g.user.password or "", field.data or ""):
        raise ValidationError("That is not your current password.")


class ResetMyPasswordForm(DynamicForm):
    current_password = PasswordField("Current password", widget=BS3PasswordFieldWidget(),
                                     validators=[DataRequired(), _current_password_is_right])
    password = password_field(lambda form: g.user.username)
    conf_password = confirm_field()


def _user_being_reset():
    pk = request.args.get("pk", "")
    user = appbuilder.sm.get_user_by_id(int(pk)) if pk.isdigit() else None
    if user is None:
        abort(404)
    return user


class ResetPasswordForm(DynamicForm):
    password = password_field(lambda form: _user_being_reset().username)
    conf_password = confirm_field()


class ResetMyPasswordView(fab.ResetMyPasswordView):
    """Your own password: the current one first; your other sessions and API tokens end."""
    form = ResetMyPasswordForm
    message = "Password changed. Your other sessions and API tokens have been signed out."


class ResetPasswordView(fab.ResetPasswordView):
    """An admin sets another user's password; that user's sessions and API tokens end."""
    form = ResetPasswordForm

    def form_get(self, form):
        _user_being_reset()

    def form_post(self, form):
        user = _user_being_reset()
        self.appbuilder.sm.reset_password(user.id, form.password.data)
        flash(as_unicode(f"Password of {user.username} changed; their sessions and API tokens have ended."),
              "info")


class UserDBModelView(PlainViewMixin, fab.UserDBModelView):
    list_title, show_title, add_title, edit_title = "Users", "User", "New user", "Edit user"
    add_form_extra_fields = {
        **fab.UserDBModelView.add_form_extra_fields,
        "password": password_field(lambda form: form.username.data, "Password"),
        "conf_password": confirm_field("Confirm password"),
    }

    def pre_add(self, item):
        check_password(item.password, item.username)  # the message is shown if the form let it through
        super().pre_add(item)


class RoleModelView(PlainViewMixin, fab.RoleModelView):
    list_title, show_title, add_title, edit_title = "Roles", "Role", "New role", "Edit role"
