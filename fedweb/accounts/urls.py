"""The site admin's user pages, under /site-admin/ (namespace ``siteadmin``)."""

from django.urls import path

from . import views

app_name = "siteadmin"

urlpatterns = [
    path("users/", views.users, name="users"),
    path("users/<int:pk>/", views.user_detail, name="user"),
    path("users/<int:pk>/password/", views.user_password, name="user_password"),
    path("users/<int:pk>/deactivate/", views.user_deactivate, name="user_deactivate"),
    path("users/<int:pk>/reactivate/", views.user_reactivate, name="user_reactivate"),
]
