"""Official documents (公文): rendered to PDF with embedded Chinese text, numbered per kind and year, carrying a
verification code, kept in the issuing service's registry (the SHA-256 of the exact bytes handed out) and verifiable
by anyone on the gateway's public page without seeing personal data.

Mechanics only: each service defines its document kinds, gathers the data and writes the wording
(``services/<service>/documents``); ``issue`` numbers, renders, stores, audits and files the document.
"""
