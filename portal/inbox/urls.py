from django.urls import path

from portal.inbox import views

app_name = "inbox"

urlpatterns = [
    path("", views.home, name="home"),
    path("next/", views.next_item, name="next"),
]
