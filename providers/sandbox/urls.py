from django.urls import path, re_path

from providers.sandbox import views

urlpatterns = [
    path("messages", views.inspect_messages, name="sandbox-messages"),
    path("control", views.control, name="sandbox-control"),
    re_path(r"^(?P<label>[\w-]+)/2010-04-01/Accounts/(?P<account_sid>\w+)/Messages\.json$", views.twilio_messages),
    re_path(
        r"^(?P<label>[\w-]+)/2010-04-01/Accounts/(?P<account_sid>\w+)/Messages/(?P<sid>\w+)\.json$",
        views.twilio_message,
    ),
    re_path(r"^(?P<label>[\w-]+)/v3/mail/send$", views.sendgrid_mail_send),
    re_path(r"^(?P<label>[\w-]+)/v3/messages$", views.sendgrid_messages),
]
