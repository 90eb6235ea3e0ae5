"""Which mail client a partnership is, from what the phone reports: pure, no Django.

The helpdesk needs this to pick step-by-step instructions; the planner does not use it.
Inputs are the export's DeviceType, DeviceModel, DeviceOS, DeviceUserAgent and ClientType
(../shared/domain/formats.md §2.3). Every value is device-reported and untrusted: it is only
compared, never shown from here.

Where the strings come from:
- [V] seen in formats.md's examples of real exports: DeviceType `iPhone`, `iPad`, `PocketPC`,
  `WP8`, `SAMSUNGSMG991B`, `Android`, `Outlook`; user agents `Apple-iPhone9C1/…`,
  `Android-SAMSUNG-SM-G991B/…`, `Outlook-iOS-Android/1.0`, `MSFT-PPC/…`; ClientType `EAS`,
  `Outlook`, `REST`; DeviceOS `iOS …`, `Android …`, `Windows CE …`.
- [I] inferred, not in those examples: DeviceType `iPod`, `SmartPhone` (Windows Mobile
  Standard), `WP` and `WindowsPhone`; user agents `Apple-iPad…` / `Apple-iPod…`, `MSFT-SPhone`,
  `MSFT-WP`; DeviceOS `Windows Mobile …` / `Windows Phone …`; Samsung model names starting
  `SM-` or `GT-`; Google's phones reporting a model starting `Pixel`. A phone matching none of
  these is `other`, which gets generic instructions rather than wrong ones.
"""

from __future__ import annotations

IOS_MAIL = "ios_mail"
ANDROID_SAMSUNG = "android_samsung"
ANDROID_GOOGLE = "android_google"
ANDROID_OTHER = "android_other"
OUTLOOK_MOBILE = "outlook_mobile"
WINDOWS_MOBILE = "windows_mobile"
WINDOWS_PHONE = "windows_phone"
OTHER = "other"

# In the order the admin lists them; the labels are what a helpdesk agent reads.
PLATFORMS: tuple[tuple[str, str], ...] = (
    (IOS_MAIL, "iPhone / iPad Mail"),
    (ANDROID_SAMSUNG, "Samsung Android (Samsung Email)"),
    (ANDROID_GOOGLE, "Google Pixel"),
    (ANDROID_OTHER, "Other Android phones"),
    (OUTLOOK_MOBILE, "Outlook for iOS / Android"),
    (WINDOWS_MOBILE, "Windows Mobile"),
    (WINDOWS_PHONE, "Windows Phone"),
    (OTHER, "Other mail app"),
)
LABELS = dict(PLATFORMS)

_APPLE_TYPES = ("iphone", "ipad", "ipod")  # iPod [I]
_WINDOWS_PHONE_TYPES = ("wp", "wp8", "windowsphone")  # WP8 [V]; WP, WindowsPhone [I]
_WINDOWS_MOBILE_TYPES = ("pocketpc", "smartphone", "wince")  # PocketPC [V]; the others [I]


def detect_platform(
    *,
    device_type: str = "",
    model: str = "",
    os: str = "",
    user_agent: str = "",
    client_type: str = "",
) -> str:
    """The platform key of one partnership; `other` when nothing identifies it.

    Outlook mobile comes first: it reports the phone's OS (`iOS 17.4`) but is its own app with
    its own settings, and it is not an EAS client at all on 2013+ (ClientType Outlook / REST).
    """
    dtype = (device_type or "").strip().lower()
    mdl = (model or "").strip().lower()
    dos = (os or "").strip().lower()
    agent = (user_agent or "").strip().lower()
    client = (client_type or "").strip().lower()

    if client in ("outlook", "rest") or dtype == "outlook" or agent.startswith("outlook-"):
        return OUTLOOK_MOBILE
    if (
        dtype in _APPLE_TYPES
        or agent.startswith(tuple(f"apple-{t}" for t in _APPLE_TYPES))
        or mdl.startswith(_APPLE_TYPES)
        or dos.startswith("ios ")
    ):
        return IOS_MAIL
    if (
        dtype in _WINDOWS_PHONE_TYPES
        or dos.startswith("windows phone")
        or agent.startswith("msft-wp")
    ):
        return WINDOWS_PHONE
    if (
        dtype in _WINDOWS_MOBILE_TYPES
        or dos.startswith(("windows ce", "windows mobile"))
        or agent.startswith(("msft-ppc", "msft-sphone"))
    ):
        return WINDOWS_MOBILE
    samsung = dtype.startswith("samsung") or "samsung" in agent
    android = samsung or "android" in dtype or dos.startswith("android") or "android" in agent
    if not android:
        return OTHER
    if samsung or mdl.startswith(("sm-", "gt-", "samsung")):
        return ANDROID_SAMSUNG
    if mdl.startswith(("pixel", "google pixel")):
        return ANDROID_GOOGLE
    return ANDROID_OTHER
