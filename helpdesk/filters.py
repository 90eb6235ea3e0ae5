"""The affected-people list's filters and sort, as one django-filter FilterSet in the URL."""

from __future__ import annotations

import django_filters
from django.db.models import QuerySet

from devices.models import ExchangeServer
from migrations_plan.models import ACTIVE_BATCH_STATES, BatchMailbox, MoveBatch, Outcome

from . import affected

NEEDS_ACTION = (("yes", "Needs action"), ("no", "Nothing to do"))


class AffectedPeopleFilter(django_filters.FilterSet):
    """Every value is a plain GET parameter, so a filtered list is a link one can share."""

    batch = django_filters.ModelChoiceFilter(
        queryset=MoveBatch.objects.filter(state__in=ACTIVE_BATCH_STATES).order_by("start_at"),
        empty_label="Any active batch",
    )
    outcome = django_filters.ChoiceFilter(
        label="Worst outcome is",
        choices=[*Outcome.choices, (affected.NO_PHONE, "No phone")],
        method="filter_outcome",
        empty_label="Any",
    )
    has = django_filters.ChoiceFilter(
        label="A phone has",
        choices=Outcome.choices,
        method="filter_has",
        empty_label="Any",
    )
    needs_action = django_filters.ChoiceFilter(
        label="Action",
        choices=NEEDS_ACTION,
        method="filter_needs_action",
        empty_label="Any",
    )
    source = django_filters.ModelChoiceFilter(
        label="From",
        field_name="source_server",
        queryset=ExchangeServer.objects.order_by("name"),
        empty_label="Any server",
    )
    target = django_filters.ModelChoiceFilter(
        label="To",
        field_name="batch__target_server",
        queryset=ExchangeServer.objects.order_by("name"),
        empty_label="Any server",
    )
    platform = django_filters.ChoiceFilter(
        label="Platform",
        choices=affected.PLATFORMS,
        method="filter_platform",
        empty_label="Any",
    )
    last_sync = django_filters.ChoiceFilter(
        label="Last sync",
        choices=affected.LAST_SYNC_AGES,
        method="filter_last_sync",
        empty_label="Any time",
    )
    access_state = django_filters.ChoiceFilter(
        label="Access state",
        choices=affected.ACCESS_STATES,
        method="filter_access_state",
        empty_label="Any",
    )
    # Sorting is a keyset walk (helpdesk/affected.py), not an ORDER BY a filter may add: this
    # field only validates the choice; the view hands it to affected.people_page().
    sort = django_filters.ChoiceFilter(
        label="Sort by",
        choices=affected.SORT_CHOICES,
        method="keep",
        empty_label=None,
    )

    class Meta:
        model = BatchMailbox
        fields: list[str] = []

    def filter_outcome(self, people: QuerySet, name: str, value: str) -> QuerySet:
        return affected.filter_worst_outcome(people, value)

    def filter_has(self, people: QuerySet, name: str, value: str) -> QuerySet:
        return affected.filter_any_outcome(people, value)

    def filter_needs_action(self, people: QuerySet, name: str, value: str) -> QuerySet:
        return affected.filter_needs_action(people, value == "yes")

    def filter_platform(self, people: QuerySet, name: str, value: str) -> QuerySet:
        return affected.filter_platform(people, value)

    def filter_last_sync(self, people: QuerySet, name: str, value: str) -> QuerySet:
        return affected.filter_last_sync(people, value)

    def filter_access_state(self, people: QuerySet, name: str, value: str) -> QuerySet:
        return affected.filter_access_state(people, value)

    def keep(self, people: QuerySet, name: str, value: str) -> QuerySet:
        return people

    @property
    def chosen_sort(self) -> str:
        """The chosen sort, or the default one for none or an unknown one."""
        if not self.is_bound:
            return affected.DEFAULT_SORT
        self.form.is_valid()  # cleaned_data keeps the fields that are valid
        return self.form.cleaned_data.get("sort") or affected.DEFAULT_SORT
