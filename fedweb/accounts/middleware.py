"""The signed-in user's language, after LocaleMiddleware has chosen one from the request.

LocaleMiddleware runs before authentication, so it can only read the language cookie
and the browser's Accept-Language (for anonymous users that is the whole answer:
"zh", "zh-CN" and "zh-Hans" all give zh-hans). A user who chose a language keeps it
on every browser and device, so it wins over both.
"""

from django.utils import translation


class UserLanguageMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        language = getattr(user, "language", "") if user is not None and user.is_authenticated else ""
        if language and language != translation.get_language():
            translation.activate(language)
            request.LANGUAGE_CODE = translation.get_language()
        # LocaleMiddleware's response half sets Content-Language from the active language.
        return self.get_response(request)
