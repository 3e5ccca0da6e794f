from django.urls import path

from merchant_django import views

urlpatterns = [
    path("health", views.health),
    path("captions", views.captions),
    path("images", views.images),
]
