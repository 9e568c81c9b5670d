from django.urls import path

from portal.inbox import dashboard_views as views

app_name = "dashboards"

urlpatterns = [
    path("", views.home, name="home"),
    path("<slug:chart>.csv", views.chart_csv, name="csv"),
]
