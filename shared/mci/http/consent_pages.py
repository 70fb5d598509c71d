"""The public consent pages (rule 15): no external assets, strict CSP, nothing cached or referred."""

from __future__ import annotations

import base64
import hashlib
import html
from datetime import datetime

from mci.domain.claims import Decision
from mci.domain.consent_decision import ConsentPage, PageStatus
from mci.emails.render import long_date

STYLE = """
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { margin: 0; font: 16px/1.5 system-ui, "Segoe UI", Arial, sans-serif; color: #1b1b1b; background: #f5f5f5; }
main { max-width: 40rem; margin: 0 auto; padding: 1.5rem 1rem; background: #fff; min-height: 100vh; }
h1 { font-size: 1.5rem; line-height: 1.25; margin: 0 0 1rem; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: .25rem 1rem; margin: 1rem 0; }
dt { font-weight: 600; }
dd { margin: 0; overflow-wrap: anywhere; }
fieldset { border: 1px solid #8a8886; border-radius: 4px; padding: 1rem; margin: 1.5rem 0 0; }
legend { font-weight: 600; padding: 0 .25rem; }
.actions { display: flex; flex-wrap: wrap; gap: .75rem; margin-top: .5rem; }
button { font: inherit; min-height: 2.75rem; padding: .5rem 1.25rem; border-radius: 4px; cursor: pointer; }
button.accept { background: #0b5cad; color: #fff; border: 2px solid #0b5cad; }
button.decline { background: #fff; color: #1b1b1b; border: 2px solid #1b1b1b; }
button:focus-visible { outline: 3px solid #1b1b1b; outline-offset: 2px; }
.note { font-size: .9rem; color: #3b3a39; }
""".strip()
STYLE_HASH = base64.b64encode(hashlib.sha256(STYLE.encode()).digest()).decode()

HEADERS = {
    "Content-Type": "text/html; charset=utf-8",
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": (
        f"default-src 'none'; style-src 'sha256-{STYLE_HASH}'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
}

TEXT = {
    "en": {
        "title": "Consent request",
        "intro": "{partner} asks for your consent to register {customer} for the Microsoft programme engagement "
        "{engagement}.",
        "agree": "If you give your consent, {partner} may work with your organisation under this engagement, "
        "and Microsoft may share with {partner} the information needed to run it and to pay the partner.",
        "partner": "Partner",
        "customer": "Organisation",
        "engagement": "Engagement",
        "deadline": "Answer before",
        "legend": "Your answer",
        "accept": "I give my consent",
        "decline": "I do not consent",
        "ignore": "If you did not expect this request, you can close this page: nothing happens without an answer.",
        "accepted_title": "Thank you: your consent is recorded",
        "accepted": "{partner} has been told. You do not need to do anything else.",
        "declined_title": "Your answer is recorded",
        "declined": "You declined. {partner} has been told, and the request has ended.",
    },
    "es": {
        "title": "Solicitud de consentimiento",
        "intro": "{partner} solicita su consentimiento para registrar a {customer} en el compromiso del programa "
        "de Microsoft {engagement}.",
        "agree": "Si da su consentimiento, {partner} podrá trabajar con su organización en este compromiso y "
        "Microsoft podrá compartir con {partner} la información necesaria para llevarlo a cabo y pagar al socio.",
        "partner": "Socio",
        "customer": "Organización",
        "engagement": "Compromiso",
        "deadline": "Responda antes del",
        "legend": "Su respuesta",
        "accept": "Doy mi consentimiento",
        "decline": "No doy mi consentimiento",
        "ignore": "Si no esperaba esta solicitud, puede cerrar esta página: no ocurrirá nada sin su respuesta.",
        "accepted_title": "Gracias: su consentimiento ha quedado registrado",
        "accepted": "Se ha informado a {partner}. No necesita hacer nada más.",
        "declined_title": "Su respuesta ha quedado registrada",
        "declined": "Ha rechazado la solicitud. Se ha informado a {partner} y la solicitud ha terminado.",
    },
}

GONE_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex"><title>Link not valid · Enlace no válido</title><style>{style}</style></head>
<body><main>
<h1>This link is not valid</h1>
<p>It may have been used already, or it may have expired. If you need a new one, ask the partner who sent it.</p>
<h1 lang="es">Este enlace no es válido</h1>
<p lang="es">Puede que ya se haya usado o que haya caducado. Si necesita uno nuevo, pídalo al socio que se lo envió.</p>
</main></body></html>
"""


BUSY_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex"><title>Please try again · Vuelva a intentarlo</title><style>{style}</style></head>
<body><main>
<h1>We could not record your answer</h1>
<p>Our service is busy. Nothing has changed: please go back and press the button again in a moment.</p>
<h1 lang="es">No hemos podido registrar su respuesta</h1>
<p lang="es">Nuestro servicio está ocupado. No ha cambiado nada: vuelva atrás y pulse el botón de nuevo
en un momento.</p>
</main></body></html>
"""


def busy_page() -> str:
    """A dependency failed: the link still works, so say so (the neutral page would say it does not)."""
    return BUSY_PAGE.format(style=STYLE)


def _document(language: str, title: str, body: str) -> str:
    return (
        f'<!doctype html>\n<html lang="{language}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<meta name="robots" content="noindex"><title>{html.escape(title)}</title><style>{STYLE}</style></head>\n'
        f"<body><main>\n{body}\n</main></body></html>\n"
    )


def gone_page() -> str:
    return GONE_PAGE.format(style=STYLE)


def render(view: ConsentPage) -> str:
    if view.status is PageStatus.GONE or view.page is None or view.deadline is None:
        return gone_page()
    page = view.page
    language = page.language if page.language in TEXT else "en"
    text = TEXT[language]
    names = {
        "partner": f"<strong>{html.escape(page.partner_name)}</strong>",
        "customer": f"<strong>{html.escape(page.customer_name)}</strong>",
        "engagement": f"<strong>{html.escape(page.engagement_name)}</strong>",
    }
    if view.decision is not None:
        key = "accepted" if view.decision is Decision.ACCEPT else "declined"
        body = f"<h1>{text[key + '_title']}</h1>\n<p>{text[key].format(**names)}</p>"
        return _document(language, text[key + "_title"], body)
    body = "\n".join(
        [
            f"<h1>{text['title']}</h1>",
            f"<p>{text['intro'].format(**names)}</p>",
            f"<p>{text['agree'].format(**names)}</p>",
            "<dl>",
            f"<dt>{text['partner']}</dt><dd>{html.escape(page.partner_name)}</dd>",
            f"<dt>{text['customer']}</dt><dd>{html.escape(page.customer_name)}</dd>",
            f"<dt>{text['engagement']}</dt><dd>{html.escape(page.engagement_name)}</dd>",
            f"<dt>{text['deadline']}</dt><dd>{_deadline(view.deadline, language)}</dd>",
            "</dl>",
            '<form method="post" action="">',
            f"<fieldset><legend>{text['legend']}</legend>",
            '<div class="actions">',
            f'<button type="submit" class="accept" name="decision" value="accept">{text["accept"]}</button>',
            f'<button type="submit" class="decline" name="decision" value="decline">{text["decline"]}</button>',
            "</div></fieldset></form>",
            f'<p class="note">{text["ignore"]}</p>',
        ]
    )
    return _document(language, text["title"], body)


def _deadline(at: datetime, language: str) -> str:
    return f'<time datetime="{at.isoformat()}">{html.escape(long_date(at, language))}</time>'
