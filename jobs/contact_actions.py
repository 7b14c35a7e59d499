"""RQ entry point for bulk actions on every contact matching a filter."""
from app import contact_actions


def apply_to_matching_contacts(action, search_args, argument, user_id):
    return contact_actions.apply_to_matching(action, search_args, argument, user_id)
