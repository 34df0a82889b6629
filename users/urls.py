from django.urls import path

from users import language, selfservice, views

app_name = "users"
urlpatterns = [
    path("", views.home, name="home"),
    path("signup/", views.signup, name="signup"),
    path("signup/thanks/", views.thanks, name="thanks"),
    path("language/", language.switch, name="language"),
    # The person's own pages (users/selfservice.py): an emailed link (with its token) is exchanged for a cookie
    # and a redirect to the clean URL beside it; the clean URLs come first (a token never reads "manage").
    path("signup/confirm/", selfservice.confirm, name="confirm_page"),
    path("signup/confirm/<str:token>/", selfservice.confirm_link, name="confirm"),
    path("my-data/", selfservice.send_link, name="send_link"),
    path("my-data/sent/", selfservice.link_sent, name="link_sent"),
    path("my-data/erased/", selfservice.erased, name="erased"),
    path("my-data/unsubscribe/", selfservice.unsubscribe, name="unsubscribe_page"),
    path("my-data/unsubscribe/<str:token>/", selfservice.unsubscribe_link, name="unsubscribe"),
    path("my-data/manage/", selfservice.manage, name="manage_page"),
    path("my-data/manage/download/", selfservice.download, name="download"),
    path("my-data/manage/withdraw/", selfservice.withdraw, name="withdraw"),
    path("my-data/manage/topics/", selfservice.manage_topics, name="manage_topics"),
    path("my-data/unsubscribe/topic/<str:token>/", selfservice.topic_unsubscribe, name="topic_unsubscribe"),
    path("my-data/manage/erase/", selfservice.erase, name="erase"),
    path("my-data/<str:token>/", selfservice.manage_link, name="manage"),
]
