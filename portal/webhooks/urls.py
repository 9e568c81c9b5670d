from django.urls import path

from portal.webhooks import views

app_name = "webhooks"

urlpatterns = [
    path("<slug:source>/", views.receive, name="receive"),
]
