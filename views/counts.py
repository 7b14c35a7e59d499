"""Row counts for big lists: exact, except on PostgreSQL above EXACT_UP_TO matching rows, where
the planner's estimate is shown as one and the pager still reaches the true last page."""
from app.bulk import count_or_estimate
from app.security import ScopedInterface


class EstimatedCount(int):
    """A row count taken from the planner, shown as an estimate wherever it is printed."""

    def __str__(self):
        return f"about {int(self):,} (estimate)"


def last_page(count, page_size):
    """The 0-based number of the last page of count rows."""
    return max(0, (int(count) - 1) // page_size)


class EstimatingInterface(ScopedInterface):
    """Counts matching rows exactly up to EXACT_UP_TO; above it PostgreSQL's planner estimate
    stands in (an exact COUNT(*) over a million contacts costs ~100 ms on every page). SQLite
    always counts exactly."""

    EXACT_UP_TO = 10_000

    def _count_query(self, filters):
        query = self.session.query(self.obj)
        return self._apply_inner_all(query, filters, select_columns=None, aliases_mapping={}).order_by(None)

    def exact_count(self, filters=None):
        return self._count_query(filters).count()

    def query_count(self, query, filters=None, select_columns=None):
        count, estimated = count_or_estimate(self.session, self._count_query(filters), self.EXACT_UP_TO)
        return EstimatedCount(count) if estimated else count

    def query_page(self, filters, order_column, order_direction, page, page_size):
        """(count, rows, page shown) for a list screen. A page at or past the end of an estimate
        is counted exactly and shown as the true last page, and so is any page past the end: the
        pager's last link always reaches the last rows (counting costs what the deep OFFSET of
        that page costs anyway)."""
        page = page or 0
        count = self.query_count(None, filters)
        if isinstance(count, EstimatedCount) and page >= last_page(count, page_size):
            count = self.exact_count(filters)
            page = last_page(count, page_size)
        rows = self._page(filters, order_column, order_direction, page, page_size)
        if not rows and page:  # past the end (of a link followed late, or of an estimate too high)
            if isinstance(count, EstimatedCount):
                count = self.exact_count(filters)
            page = last_page(count, page_size)
            rows = self._page(filters, order_column, order_direction, page, page_size)
        return count, rows, page

    def _page(self, filters, order_column, order_direction, page, page_size):
        query = self.apply_all(self.session.query(self.obj), filters, order_column, order_direction, page, page_size)
        return query.all()


class EstimatedPager:
    """ModelView mixin: the list screen pages through EstimatingInterface.query_page, so the
    pager highlights the page actually shown."""

    def _get_list_widget(self, filters, actions=None, order_column="", order_direction="", page=None,
                         page_size=None, widgets=None, **kwargs):
        widgets = widgets or {}
        page_size = page_size or self.page_size
        if not order_column and self.base_order:
            order_column, order_direction = self.base_order
        count, rows, page = self.datamodel.query_page(filters.get_joined_filters(self._base_filters),
                                                      order_column, order_direction, page, page_size)
        pks = [self._serialize_pk_if_composite(pk) for pk in self.datamodel.get_keys(rows)]
        widgets["list"] = self.list_widget(
            label_columns=self.label_columns, include_columns=self.list_columns,
            value_columns=self.datamodel.get_values(rows, self.list_columns), order_columns=self.order_columns,
            formatters_columns=self.formatters_columns, page=page, page_size=page_size, count=count, pks=pks,
            actions=actions or self.actions, filters=filters, modelview_name=self.__class__.__name__, **kwargs)
        return widgets
