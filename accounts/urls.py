from django.urls import path

from accounts.views import OneMapLoginView, OneMapLogoutView

urlpatterns = [
    path("login/", OneMapLoginView.as_view(), name="login"),
    path("logout/", OneMapLogoutView.as_view(), name="logout"),
]
