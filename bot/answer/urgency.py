"""Is a guest's message an emergency? Lock-outs, water leaks, fire or smoke, gas, no heating, injuries,
break-ins and power cuts, in English, Portuguese, Spanish, French, German and Italian.

A missed emergency costs a guest a night outside; a false alarm costs an agent a glance. So the patterns
look for the situation ("we are locked out", "il y a une fuite d'eau"), not for a topic word alone ("is
there a fire extinguisher?", "how does the heating work?" are ordinary questions). Questions about the
thing in general are excluded by the negative patterns below. Measured on tests/agent/urgent_corpus.jsonl.
"""

from __future__ import annotations

import re
import unicodedata

_FLAGS = re.IGNORECASE | re.UNICODE

CATEGORIES: dict[str, tuple[str, ...]] = {
    "lockout": (
        r"\blocked (?:our ?selves |myself )?out\b",
        r"\b(?:can'?t|cannot|can not|unable to) (?:get|go) (?:in|inside)\b",
        r"\b(?:key|code|lock|door)\b.{0,30}\b(?:doesn'?t|does not|won'?t|isn'?t|is not|not) (?:work|open)",
        r"\bstuck outside\b",
        r"\bkey (?:broke|snapped|is stuck)\b",
        r"\b(?:on est|nous sommes|je suis|on reste) (?:bloqu[ée]s?|coinc[ée]s?) dehors\b",
        r"\b(?:impossible|n'arrive pas|n'arrivons pas|on n'arrive pas) (?:d'|à |a )?(?:entrer|ouvrir)\b",
        r"\bla (?:porte|cl[ée]|serrure) ne (?:s'ouvre|marche|fonctionne) pas\b",
        r"\b(?:estamos|estoy|me qued[ée]|nos quedamos) (?:fuera|afuera|encerrad[oa]s? fuera)\b",
        r"\bno (?:podemos|puedo|consigo|conseguimos) (?:entrar|abrir)\b",
        r"\b(?:la puerta|la llave|el c[óo]digo|la cerradura) no (?:abre|funciona)\b",
        r"\b(?:estamos|estou|fic[aá]mos|ficamos) (?:trancad[oa]s? )?(?:fora|do lado de fora)\b",
        r"\bn[ãa]o (?:conseguimos|consigo|d[áa] para) (?:entrar|abrir)\b",
        r"\b(?:a porta|a chave|o c[óo]digo|a fechadura) n[ãa]o (?:abre|funciona)\b",
        r"\baus ?gesperrt\b",
        r"\b(?:kommen|komme|k[öo]nnen|kann) nicht (?:rein|hinein|ins)\b",
        r"\b(?:t[üu]r|schl[üu]ssel|code|schloss)\b.{0,30}\b(?:geht|funktioniert|[öo]ffnet) (?:sich )?nicht\b",
        r"\bstehen (?:vor der t[üu]r|drau[ßs]en)\b",
        r"\b(?:siamo|sono|rimast[io]) chius[io] fuori\b",
        r"\bnon (?:riusciamo|riesco|possiamo|posso) (?:a )?(?:entrare|aprire)\b",
        r"\b(?:la porta|la chiave|il codice|la serratura) non (?:si apre|funziona)\b",
    ),
    "water": (
        r"\b(?:water )?leak(?:s|ing)?\b(?!.{0,20}\?)",
        r"\bflood(?:ed|ing)?\b",
        r"\bburst pipe\b",
        r"\bwater (?:is )?(?:dripping|pouring|leaking|coming) (?:through|from|out|in)\b",
        r"\beau qui (?:coule|fuit|goutte) (?:du|de la|par)\b",
        r"\bwater (?:everywhere|on the floor|coming)\b",
        r"\bfuite d'eau\b",
        r"\binond(?:ation|[ée]e?s?)\b",
        r"\bde l'eau partout\b",
        r"\bd[ée]g[âa]t des eaux\b",
        r"\bfuga de (?:agua|água)\b",
        r"\binund(?:aci[óo]n|ado|ando|a[çc][ãa]o|ad[oa])\b",
        r"\bagua por todas partes\b",
        r"\b[áa]gua por todo o lado\b",
        r"\bcano rebentado\b",
        r"\bwasserschaden\b",
        r"\brohrbruch\b",
        r"\b[üu]berschwemm",
        r"\bwasser (?:l[äa]uft|tropft|[üu]berall)\b",
        r"\bundicht\b",
        r"\bperdita d'acqua\b",
        r"\ballagat[oa]\b",
        r"\ballagamento\b",
        r"\bacqua dappertutto\b",
        r"\btubo rotto\b",
    ),
    "fire": (
        r"\b(?:there'?s|there is|a) fire\b",
        r"\bon fire\b",
        r"\bsmoke (?:is )?(?:coming|everywhere|in)\b",
        r"\bsmell(?:s)? (?:of )?(?:burning|smoke)\b",
        r"\bsmoke alarm (?:is )?(?:going off|ringing|beeping)\b",
        r"\bincendie\b",
        r"\by a (?:le )?feu\b",
        r"\bde la fum[ée]e\b",
        r"\b[çc]a br[ûu]le\b",
        r"\bincendio\b",
        r"\bfuego\b",
        r"\bhumo\b",
        r"\bse (?:est[áa] )?quemando\b",
        r"\bfogo\b",
        r"\bfuma[çc]a\b",
        r"\ba arder\b",
        r"\b(?:es )?brennt\b",
        r"\bfeuer\b(?!l[öo]scher|melder)",
        r"\brauch\b(?!melder|en verboten|er)",
        r"\bal fuoco\b",
        r"\bfumo\b",
        r"\bva a fuoco\b",
        r"\bc'[èe] un incendio\b",
    ),
    "gas": (
        r"\bsmell(?:s)? (?:of )?gas\b",
        r"\bgas (?:leak|smell)\b",
        r"\bcarbon monoxide\b",
        r"\bco alarm\b",
        r"\bodeur de gaz\b",
        r"\b[çc]a sent le gaz\b",
        r"\bfuite de gaz\b",
        r"\bmonoxyde\b",
        r"\bolor a gas\b",
        r"\bhuele a gas\b",
        r"\bfuga de g[áa]s\b",
        r"\bcheiro a g[áa]s\b",
        r"\bcheira a g[áa]s\b",
        r"\bmon[óo]xido\b",
        r"\bgasgeruch\b",
        r"\briecht nach gas\b",
        r"\bgasleck\b",
        r"\bkohlenmonoxid\b",
        r"\bodore di gas\b",
        r"\bpuzza di gas\b",
        r"\bfuga di gas\b",
        r"\bmonossido\b",
    ),
    "cold": (
        r"\bno heat(?:ing)?\b",
        r"\bheating (?:is )?(?:not working|doesn'?t work|broken|off)\b",
        r"\bfreezing\b",
        r"\bpas de chauffage\b",
        r"\bchauffage (?:en panne|ne marche pas|ne fonctionne pas)\b",
        r"\bon g[èe]le\b",
        r"\bsin calefacci[óo]n\b",
        r"\bla calefacci[óo]n no funciona\b",
        r"\bnos (?:estamos )?congelando\b",
        r"\bsem aquecimento\b",
        r"\bo aquecimento n[ãa]o funciona\b",
        r"\best(?:amos|ou) a congelar\b",
        r"\bkeine heizung\b",
        r"\bheizung (?:geht|funktioniert|l[äa]uft) nicht\b",
        r"\bheizung ist (?:aus|kaputt)\b",
        r"\bwir frieren\b",
        r"\bsenza riscaldamento\b",
        r"\bil riscaldamento non funziona\b",
        r"\bsi gela\b",
    ),
    "injury": (
        r"\b(?:is |got |was |been )?(?:badly )?(?:injured|hurt)\b",
        r"\bbleeding\b",
        r"\bambulance\b",
        r"\bunconscious\b",
        r"\bbroke (?:his|her|my|a) (?:leg|arm|ankle|wrist)\b",
        r"\bfell down the stairs\b",
        r"\bbless[ée]e?s?\b",
        r"\bsaigne\b",
        r"\bune ambulance\b",
        r"\binconscient\b",
        r"\bherid[oa]s?\b",
        r"\bsangr(?:a|ando)\b",
        r"\bambulancia\b",
        r"\binconsciente\b",
        r"\bferid[oa]s?\b",
        r"\ba sangrar\b",
        r"\bambul[âa]ncia\b",
        r"\bverletzt\b",
        r"\bblutet\b",
        r"\bkrankenwagen\b",
        r"\brettungswagen\b",
        r"\bbewusstlos\b",
        r"\bferit[oa]\b",
        r"\bsanguina\b",
        r"\bambulanza\b",
        r"\bsvenut[oa]\b",
    ),
    "break_in": (
        r"\bbreak-?in\b",
        r"\bbroke in\b",
        r"\bbroken into\b",
        r"\bburglar",
        r"\bsomeone (?:is )?(?:in|inside) the (?:flat|apartment|house)\b",
        r"\bcambriol",
        r"\bquelqu'un (?:est )?dans l'appartement\b",
        r"\brobo\b",
        r"\bnos han robado\b",
        r"\bassalt",
        r"\bfomos roubados\b",
        r"\beinbruch\b",
        r"\beingebrochen\b",
        r"\bfurto\b",
        r"\bci hanno derubat",
        r"\bladri\b",
    ),
    "power": (
        r"\bno (?:power|electricity)\b",
        r"\bpower (?:cut|outage|is out)\b",
        r"\bplus d'[ée]lectricit[ée]\b",
        r"\bpanne de courant\b",
        r"\bsin (?:luz|electricidad)\b",
        r"\bse fue la luz\b",
        r"\bsem (?:luz|eletricidade)\b",
        r"\bkein strom\b",
        r"\bstromausfall\b",
        r"\bsenza (?:luce|corrente)\b",
        r"\bnon c'[èe] (?:pi[ùu] )?(?:luce|corrente)\b",
        r"\bblackout\b",
    ),
}

# Ordinary questions that mention an emergency topic ("where is the fire extinguisher?").
_NOT_URGENT = re.compile(
    r"\b(?:extinguisher|extintor|extincteur|feuerl[öo]scher|estintore|smoke detector|detector de humo|"
    r"d[ée]tecteur de fum[ée]e|rauchmelder|rilevatore|fire blanket|fire exit|salida de emergencia|"
    r"how (?:does|do) (?:i|we|you) (?:use|turn on|switch on)|wie funktioniert|comment (?:fonctionne|marche|allumer)|"
    r"c[óo]mo (?:funciona|enciendo)|come (?:funziona|si accende)|como (?:funciona|ligo)|fireplace|chimenea|"
    r"chemin[ée]e|kamin|camino|lareira|fire ?pit|bbq|barbecue|grill|in case of|en cas d[e']|en caso de|"
    r"im (?:fall|notfall)|in caso di|em caso de|no smoking|nicht rauchen|interdit de fumer|prohibido fumar|"
    r"vietato fumare|proibido fumar|rauchen verboten)\b",
    _FLAGS,
)

_COMPILED = {name: tuple(re.compile(p, _FLAGS) for p in patterns) for name, patterns in CATEGORIES.items()}


def _fold(text: str) -> str:
    return unicodedata.normalize("NFC", text).replace("’", "'").replace("`", "'")


def urgent_category(text: str) -> str | None:
    """The emergency a message reports ("lockout", "water", "fire", "gas", "cold", "injury", "break_in",
    "power"), or None for an ordinary message."""
    folded = _fold(text or "")
    if not folded.strip():
        return None
    hits = [name for name, patterns in _COMPILED.items() if any(p.search(folded) for p in patterns)]
    if not hits:
        return None
    if _NOT_URGENT.search(folded) and not any(name in ("gas", "injury", "lockout") for name in hits):
        return None
    return hits[0]
