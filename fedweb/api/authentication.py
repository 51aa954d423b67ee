"""``Authorization: Bearer fw_...`` authentication for DRF."""

from rest_framework import authentication, exceptions

from .tokens import authenticate_token


class ApiTokenAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        scheme, _, raw = header.partition(" ")
        if scheme.lower() != self.keyword.lower():
            return None
        token = authenticate_token(raw.strip())
        if token is None:
            raise exceptions.AuthenticationFailed("The API token is not valid, has expired or was revoked.")
        return token.user, token

    def authenticate_header(self, request):
        return self.keyword
