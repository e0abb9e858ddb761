"""Cursor pagination for every list: stable under inserts, and one indexed range scan
per page however deep the client reads."""

from rest_framework.exceptions import ValidationError
from rest_framework.pagination import CursorPagination


class CursorPage(CursorPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200

    def get_page_size(self, request):
        """The asked size, or a 400 that says the range: DRF would quietly clamp 100000
        to the maximum and treat `abc`, 0 or -5 as the default, hiding a client's bug."""
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        if not raw.isdigit() or not 1 <= int(raw) <= self.max_page_size:
            raise ValidationError({"page_size": [f"Must be an integer from 1 to {self.max_page_size}."]})
        return int(raw)

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"] |= {"minimum": 1, "maximum": self.max_page_size, "default": self.page_size}
        return parameters

    @classmethod
    def ordered_by(cls, *fields: str) -> type["CursorPage"]:
        return type(f"CursorPage_{'_'.join(f.strip('-') for f in fields)}", (cls,), {"ordering": fields})
