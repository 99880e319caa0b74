"""Session login and logout for the browser. API clients use bearer tokens instead
(accounts.middleware)."""

from __future__ import annotations

from django.contrib.auth.views import LoginView, LogoutView


class OneMapLoginView(LoginView):
    template_name = "frontend/login.html"
    redirect_authenticated_user = True


class OneMapLogoutView(LogoutView):
    """POST only (Django's LogoutView refuses GET): a link or an image tag cannot log anyone out."""
