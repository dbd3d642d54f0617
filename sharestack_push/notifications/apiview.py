"""The base view of every API endpoint."""
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.views import APIView


# An APIView that rejects query parameters it does not know, so a misspelt parameter
# (`?userid=`) gets a 400 naming it instead of being ignored. (A comment, not a
# docstring: drf-spectacular would show a docstring as every operation's description.)
class ApiView(APIView):

    allowed_query_params: tuple[str, ...] = ()

    def initial(self, request: Request, *args, **kwargs) -> None:
        super().initial(request, *args, **kwargs)
        unknown = sorted(set(request.query_params) - set(self.allowed_query_params))
        if unknown:
            raise serializers.ValidationError(
                {name: "Unknown query parameter." for name in unknown}
            )
