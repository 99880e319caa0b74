from django.urls import path

urlpatterns: list = []  # OGC API - Features
