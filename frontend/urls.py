from django.urls import path

urlpatterns: list = []  # the one-map page and login arrive here
