"""Every state change of accounts, keys, senders, contacts and conversations."""

from conversations.services.accounts import (
    API_KEY_PREFIX,
    account_create,
    api_key_create,
    api_key_hash,
    api_key_revoke,
    sender_add,
)
from conversations.services.consent import (
    optout_add,
    optout_delete,
    optout_remove,
    suppression_add,
    suppression_delete,
)
from conversations.services.contacts import (
    AddressIsSender,
    AddressTaken,
    ContactError,
    ContactGone,
    ContactMergeRefused,
    contact_create,
    contact_delete,
    contact_merge,
    contact_update,
)
from conversations.services.threads import (
    ThreadedMessage,
    conversation_add_message,
    conversation_link_contact,
    conversations_add_messages,
)

__all__ = [
    "API_KEY_PREFIX",
    "AddressIsSender",
    "AddressTaken",
    "ContactError",
    "ContactGone",
    "ContactMergeRefused",
    "ThreadedMessage",
    "account_create",
    "api_key_create",
    "api_key_hash",
    "api_key_revoke",
    "contact_create",
    "contact_delete",
    "contact_merge",
    "contact_update",
    "conversation_add_message",
    "conversation_link_contact",
    "conversations_add_messages",
    "optout_add",
    "optout_delete",
    "optout_remove",
    "sender_add",
    "suppression_add",
    "suppression_delete",
]
