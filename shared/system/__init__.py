"""The example system: a social network and an order service.

Liking a post emits ``post.liked.v1``, which the timeline service uses; every change lands in
the audit log; a dispatched order triggers a notification request. Replace this package with
your own events and topology; the toolkit around it stays the same.
"""
