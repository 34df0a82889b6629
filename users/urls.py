from django.urls import path

from users import language, selfservice, views

app_name = "users"
urlpatterns = [
    path("", views.home, name="home"),
    path("signup/", views.signup, name="signup"),
    path("signup/thanks/", views.thanks, name="thanks"),
    path("language/", language.switch, name="language"),
    # The person's own pages (users/selfservice.py), reached by signed links in their emails.
    path("signup/confirm/<str:token>/", selfservice.confirm, name="confirm"),
    path("my-data/", selfservice.send_link, name="send_link"),
    path("my-data/sent/", selfservice.link_sent, name="link_sent"),
    path("my-data/erased/", selfservice.erased, name="erased"),  # before the token's pattern, which would take it
    path("my-data/unsubscribe/<str:token>/", selfservice.unsubscribe, name="unsubscribe"),
    path("my-data/<str:token>/", selfservice.manage, name="manage"),
    path("my-data/<str:token>/download/", selfservice.download, name="download"),
    path("my-data/<str:token>/withdraw/", selfservice.withdraw, name="withdraw"),
    path("my-data/<str:token>/erase/", selfservice.erase, name="erase"),
]
