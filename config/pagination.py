"""Cursor pagination for every list: stable under inserts, and one indexed range scan
per page however deep the client reads."""

from rest_framework.pagination import CursorPagination


class CursorPage(CursorPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200

    @classmethod
    def ordered_by(cls, *fields: str) -> type["CursorPage"]:
        return type(f"CursorPage_{'_'.join(f.strip('-') for f in fields)}", (cls,), {"ordering": fields})
