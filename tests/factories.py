"""factory_boy factories for every model the tests touch."""

from __future__ import annotations

import uuid
from datetime import timedelta

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.utils import timezone

from devices.models import ExchangeServer, Generation, Mailbox, MobileDevice, Partnership
from exsync.roles import ADMINS, HELPDESK, ensure_roles
from migrations_plan.models import BatchMailbox, MoveBatch


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.test")
    password = factory.django.Password("pw-for-tests")

    @factory.post_generation
    def role(self, create: bool, extracted: str | None, **kwargs) -> None:
        if create and extracted:
            ensure_roles()  # a transactional test's flush removes what the migration made
            group = {"admin": ADMINS, "helpdesk": HELPDESK}[extracted]
            self.groups.add(Group.objects.get(name=group))


class ExchangeServerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ExchangeServer

    name = factory.Sequence(lambda n: f"EX2016-{n:02d}")
    fqdn = factory.LazyAttribute(lambda s: f"{s.name.lower()}.contoso.local")
    generation = Generation.EX2016
    build = "15.1.2507.6"
    admin_display_version = "Version 15.1 (Build 2507.6)"
    site = "contoso.local/Configuration/Sites/HQ"
    roles = "Mailbox"
    eas_external_url = "https://mail.contoso.com/Microsoft-Server-ActiveSync"
    cert_thumbprint = "9F3C1B27A4E05D6C8B1F2A3E4D5C6B7A8F9E0D1C"
    cert_issuer = "CN=Contoso Issuing CA"
    cert_not_after = factory.LazyFunction(lambda: timezone.now() + timedelta(days=365))

    class Params:
        # An Exchange 2010 SP3 mailbox server that publishes no EAS URL of its own.
        ex2010 = factory.Trait(
            generation=Generation.EX2010,
            build="14.3.123.4",
            admin_display_version="Version 14.3 (Build 123.4)",
            eas_external_url="",
        )


class MailboxFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Mailbox

    display_name = factory.Sequence(lambda n: f"User {n}")
    name = factory.SelfAttribute("display_name")
    alias = factory.Sequence(lambda n: f"user{n}")
    primary_smtp_address = factory.LazyAttribute(lambda m: f"{m.alias}@contoso.com")
    identity = factory.LazyAttribute(lambda m: f"contoso.local/Users/{m.name}")
    exchange_guid = factory.LazyFunction(uuid.uuid4)
    server = factory.SubFactory(ExchangeServerFactory)
    database = "DB01"


class MobileDeviceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = MobileDevice

    device_id = factory.Sequence(lambda n: f"Appl{n:012d}")
    device_type = "iPhone"
    model = "iPhone15C2"
    os = "iOS 17.5.1 21F90"
    user_agent = "Apple-iPhone15C2/2106.90"


class PartnershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Partnership

    device = factory.SubFactory(MobileDeviceFactory)
    mailbox = factory.SubFactory(MailboxFactory)
    eas_version = "16.1"
    access_state = "Allowed"
    last_success_sync_at = factory.LazyFunction(timezone.now)


class MoveBatchFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = MoveBatch

    name = factory.Sequence(lambda n: f"Batch {n}")
    target_server = factory.SubFactory(ExchangeServerFactory)
    start_at = factory.LazyFunction(lambda: timezone.now() + timedelta(days=7))
    created_by = factory.SubFactory(UserFactory)


class BatchMailboxFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = BatchMailbox

    batch = factory.SubFactory(MoveBatchFactory)
    mailbox = factory.SubFactory(MailboxFactory)


class OrganisationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "devices.Organisation"
        django_get_or_create = ("forest",)

    forest = "contoso.local"
    name = "Contoso"


class MobileDevicePolicyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "devices.MobileDevicePolicy"

    organisation = factory.SubFactory(OrganisationFactory)
    name = factory.Sequence(lambda n: f"Policy {n}")
    is_default = False
    allow_non_provisionable_devices = True
    password_enabled = False
    require_device_encryption = False


class NamespaceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "devices.Namespace"
        skip_postgeneration_save = True

    host = factory.Sequence(lambda n: f"mail{n}.contoso.com")
    devices_use = True

    @factory.post_generation
    def servers(self, create: bool, extracted, **kwargs) -> None:
        if create and extracted:
            self.servers.set(extracted)


class ClientProfileFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "devices.ClientProfile"

    name = factory.Sequence(lambda n: f"iOS Mail {n}")
    device_type = "iPhone"
    os_prefix = "iOS 17"
    max_eas_version = "16.1"
