"""The navigation bar in the order of daily use: Inbox, Contacts, Lists, Campaigns, Imports,
Money, then one Settings menu for the admin screens. Flask-AppBuilder's own security screens
(base permissions, views/menus) stay reachable by their address, not from the menu.

Menu items keep their names (the permission "menu_access" is granted by name); only where
they sit and what they read change."""
from flask_appbuilder.menu import MenuItem

ORDER = ("Inbox", "Contacts", "Lists", "Campaigns", "Imports", "Money", "Settings")
# Items that sit in another category than the one their view registered in, in this order.
MOVED = {
    "Contacts": ("Contacts", "Properties", "Todos", "Messages"),
    "Settings": ("List Users", "List Roles", "Audit log", "Failed events", "Opt-outs", "Possible opt-outs", "Saved replies",
                 "Customers to review", "Integrations"),
}
LABELS = {"List Users": "Users", "List Roles": "Roles", "Todos": "To-dos"}
HIDDEN_CATEGORIES = ("Security",)  # what is left in it: FAB's permission internals
ICONS = {"Settings": "fa-cog"}


def arrange(menu):
    """Re-order menu.menu (FAB's list of categories) in place."""
    home = {name: category for category, names in MOVED.items() for name in names}
    categories, items, leaves = {}, [], []
    for category in menu.menu:
        if not category.childs:  # a link of its own, without a category
            leaves.append(category)
            continue
        categories[category.name] = category
        items.extend((category.name, item) for item in category.childs)
    placed = {name: [] for name in (*ORDER, *categories)}
    for category, item in items:
        target = home.get(item.name, category)
        if target in HIDDEN_CATEGORIES or (item.name == "-" and target != category):
            continue
        item.label = LABELS.get(item.name, item.label)
        placed[target].append(item)
    for category, names in MOVED.items():
        placed[category].sort(key=lambda item, names=names: names.index(item.name) if item.name in names else len(names))
    order = [*ORDER[:-1], *(name for name in placed if name not in ORDER), ORDER[-1]]
    arranged = [_category(categories.get(name), name, placed[name]) for name in order if placed[name]]
    menu.menu = arranged[:-1] + leaves + arranged[-1:] if arranged and arranged[-1].name == "Settings" else (
        arranged + leaves)


def _category(existing, name, childs):
    category = existing or MenuItem(name, icon=ICONS.get(name, ""), label=name)
    category.childs = childs
    return category
