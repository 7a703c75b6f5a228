"""The individual account statement (个人权益记录) as an official document: numbered, registered, verifiable
(services/kernel/documents)."""
