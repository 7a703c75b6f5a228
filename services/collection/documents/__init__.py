"""The arrears notice (社会保险费催缴通知书) as an official document: numbered, registered, verifiable
(services/kernel/documents)."""
