"""The helpdesk's pages: find a person from anywhere, their page, the affected people."""
