"""Views of the helpdesk pages, one module per page."""
