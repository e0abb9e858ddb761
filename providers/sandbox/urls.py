from django.urls import path, re_path

from providers.sandbox import sendgrid_api, twilio_api, twilio_voice_api, views

ACCOUNT = r"^(?P<label>[\w-]+)/2010-04-01/Accounts/(?P<account_sid>\w+)/"

urlpatterns = [
    path("messages", views.inspect_messages, name="sandbox-messages"),
    path("control", views.control, name="sandbox-control"),
    path("calls", views.inspect_calls, name="sandbox-calls"),
    path("calls/inbound", views.call_inbound, name="sandbox-call-inbound"),
    re_path(ACCOUNT + r"Calls\.json$", twilio_voice_api.calls),
    re_path(ACCOUNT + r"Calls/(?P<sid>\w+)\.json$", twilio_voice_api.call),
    re_path(ACCOUNT + r"Recordings/(?P<sid>RE\w+?)(?P<extension>\.wav|\.mp3|)$", twilio_voice_api.recording_audio),
    re_path(ACCOUNT + r"Messages\.json$", twilio_api.messages),
    re_path(ACCOUNT + r"Messages/(?P<sid>\w+)\.json$", twilio_api.message),
    re_path(ACCOUNT + r"Messages/(?P<sid>\w+)/Media\.json$", twilio_api.media_list),
    re_path(ACCOUNT + r"Messages/(?P<sid>\w+)/Media/(?P<media_sid>\w+)\.json$", twilio_api.media),
    re_path(ACCOUNT + r"(?P<path>.*)$", twilio_api.unknown),
    re_path(r"^(?P<label>[\w-]+)/v3/mail/send$", sendgrid_api.mail_send),
    re_path(r"^(?P<label>[\w-]+)/v3/messages$", sendgrid_api.activity),
]
