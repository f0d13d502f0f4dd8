from django.urls import path

from . import views

urlpatterns = [
    path('small', views.small),
    path('post', views.post),
]
