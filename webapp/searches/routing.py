from django.urls import path

from webapp.searches.consumers import SearchJobConsumer

websocket_urlpatterns = [path("ws/searches/<int:pk>/", SearchJobConsumer.as_asgi())]
