"""The few things a customer says that are not questions for the FAQ: show my card, my balance, my
history, a person please, hello, thanks. Plain rules in Russian, Polish and English; no aiogram,
no database. It runs before the FAQ matcher, and when in doubt it answers None so that the FAQ
(or a manager) gets the message.

How it decides:

1. The text is normalised (`bot.faq.rules.normalise`: lower case, `ё`→`е`, Polish diacritics and
   punctuation and emoji gone) and cut into words.
2. Each word is looked up in a small hand-written lexicon that gives it tags (CARD, POINTS, SELF,
   PAY, TALK…). The person's own language is tried first, then the other two, so people who mix
   languages are understood, while a function word of their language (Polish `i` = "and", `my` =
   "we") is never read as an English one. A word found nowhere exactly may be a typo: it takes the
   tags of the nearest lexicon word within one edit (five to seven letters) or two (eight and
   more); four-letter words forgive only two swapped letters, and words of three letters or less
   must match exactly (`hi` is never `his`).
3. Rules over those tags, in order (the first that fits wins): human, history, balance, card,
   then greeting/thanks. Each intent needs its subject word together with a sign that the person
   means *their own* thing or wants it now (my/мой/moja, show/покажи/pokaż, how many … I have,
   talk to …), and is vetoed by the words of an FAQ question about the same subject: paying
   *by* card, how to *get* a card, how points are *earned*, *expire*, are *transferred*, a table
   *for four people*; a complaint ("баллы не пришли", "why is my balance zero") is left for a
   person too. A message made of nothing but the subject word ("qr", "баланс?", "historia")
   counts as well.
4. A greeting or thanks counts only when the whole message is that: greeting and thanks words and
   polite filler ("спасибо большое", "thanks a lot guys"), plus at most two capitalised words
   (the bot's or a person's name) when there is no question mark. "hi, do you have vegan milk?"
   is a question and goes to the FAQ.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import Flag, StrEnum, auto
from functools import lru_cache

from rapidfuzz import process
from rapidfuzz.distance import OSA, Levenshtein

from bot.faq.rules import LANGUAGES, STOPWORDS, normalise


class Intent(StrEnum):
    CARD = "card"  # show me my loyalty card / QR
    BALANCE = "balance"  # how many points I have
    HISTORY = "history"  # my points and purchases so far
    HUMAN = "human"  # a person, not the bot
    HELLO = "hello"  # a greeting alone
    THANKS = "thanks"  # thanks alone


class _T(Flag):
    """What a word says, as far as these rules care."""

    NONE = 0
    CARD = auto()  # the card itself: карта, karta, card, qr
    CODE = auto()  # код, kod, code: goes with a card
    LOYALTY = auto()  # лояльности, lojalnościowa, loyalty: goes with a card or points
    PAY = auto()  # paying: картой, płacić, payment, cash, visa
    CARD_OTHER = auto()  # a card that is not theirs: gift card, menu (karta dań), wine list, a map
    ACQUIRE = auto()  # getting one: получить, dostać, get, sign up
    SHOW = auto()  # покажи, pokaż, show, send, where
    POSSESSIVE = auto()  # мой, moja, my
    SELF = auto()  # the person: я, мне, mam, mi, I, me (and every possessive)
    POINTS = auto()  # баллы, punkty, points, bonus
    BALANCE = auto()  # баланс, saldo, balance, "stan konta"
    ACCOUNT = auto()  # счёт, konto, account
    QUANTITY = auto()  # сколько, ile, "how many"
    STATE = auto()  # осталось, zostało, left, current
    CHECK = auto()  # проверить, sprawdzić, check, see
    POINTS_USE = auto()  # how points are earned or spent: начисляются, zbierać, earn, spend, need
    RULES = auto()  # how the programme works: сгорают, wygasają, expire, transfer, cost
    HISTORY = auto()  # история, historia, history
    RECORDS = auto()  # покупки, transakcje, purchases, transactions
    RECENT = auto()  # последние, ostatnie, recent, past
    HISTORY_OTHER = auto()  # the café's own story: кафе, kawiarni, cafe, founded
    HUMAN = auto()  # someone whose job is to answer: оператор, konsultant, manager, support
    PERSON = auto()  # anyone: человек, osoba, person, someone (also "a table for 4 people")
    LIVE = auto()  # живой, prawdziwy, real, live
    TALK = auto()  # поговорить, rozmawiać, talk, speak
    CALL = auto()  # позовите, potrzebuję, need, get me
    BOT = auto()  # бот, bot, robot
    NEGATION = auto()  # не, nie, not: "баллы не пришли" is a complaint, not a request
    WHY = auto()  # когда, kiedy, when, why: "when do points show up" asks how the programme works
    NUMBER = auto()  # двое, cztery, four (digits are numbers too)
    BOOKING = auto()  # столик, stolik, table, reservation
    JOBS = auto()  # вакансии, praca, hiring
    HELLO = auto()  # привет, cześć, hi
    THANKS = auto()  # спасибо, dzięki, thanks
    PART = auto()  # half of a greeting: добрый, dzień, good, morning
    POLITE = auto()  # filler that may go with a greeting or thanks: большое, bardzo, a lot, please


# --- the lexicon -----------------------------------------------------------------------------
# Words are written as people write them; they are normalised when the module loads, so "kartę"
# and "karte" are one entry. Inflected forms are listed rather than guessed from a stem: "накопил"
# (has accumulated: balance) and "накопить" (how to accumulate: a question) differ by one letter.

_LEXICON: dict[_T, dict[str, str]] = {
    _T.CARD: {
        "ru": "карта карту карты карте карточка карточку карточки карточке карт карточек qr кьюар куар кюар "
        "куаркод кьюаркод штрихкод",
        "pl": "karta kartę karty karcie kartka kartkę karteczka karteczkę qr qrkod",
        "en": "card cards qr qrcode barcode",
    },
    _T.CODE: {"ru": "код кода коде", "pl": "kod kodu kodem kreskowy", "en": "code"},
    _T.LOYALTY: {
        "ru": "лояльности бонусная бонусную клубная клубную скидочная скидочную постоянного клиента",
        "pl": "lojalnościowa lojalnościową lojalnościowej klubowa klubową klubowej stałego klienta",
        "en": "loyalty member membership club rewards",
    },
    _T.PAY: {
        "ru": "картой карточкой оплатить оплата оплаты оплату оплачу оплачивать платить заплатить расплатиться "
        "плачу терминал наличные наличными наличка наличкой безнал безналичный безналом бесконтактно visa "
        "виза mastercard apple google принимаете",
        "pl": "płacić zapłacić zapłacę płacę płatność płatności płatnością terminal gotówka gotówkę gotówką "
        "blik blikiem zbliżeniowo zbliżeniowa visa mastercard przyjmujecie apple google",
        "en": "pay paying payment payments paid contactless cash terminal visa mastercard amex credit debit "
        "apple google accept accepted take by declined",
    },
    _T.CARD_OTHER: {
        "ru": "подарочная подарочную подарочные подарочных подарочной сертификат сертификаты меню вин винная "
        "винную маршрут пройти дойти добраться проехать доехать",
        "pl": "podarunkowa podarunkowe podarunkową podarunkowej podarunkowych prezentowa prezentowe upominkowa "
        "menu dań win napojów voucher bon bony",
        "en": "gift giftcard voucher menu wine drinks map maps directions",
    },
    _T.ACQUIRE: {
        "ru": "получить получу получать оформить оформление завести сделать взять купить выдаете выдают "
        "зарегистрироваться регистрироваться регистрация вступить",
        "pl": "dostać dostanę otrzymać założyć zrobić wyrobić kupić zarejestrować rejestracja zapisać dołączyć",
        "en": "get obtain sign signup register registration join apply buy",
    },
    _T.SHOW: {
        "ru": "покажи покажите показать дай дайте скинь скиньте пришли пришлите отправь отправьте открой "
        "откройте открыть выведи вышли вышлите где",
        "pl": "pokaż pokażcie pokazać daj dajcie wyślij wyślijcie prześlij prześlijcie podeślij otwórz otwórzcie gdzie",
        "en": "show display send give open pull where wheres",
    },
    _T.POSSESSIVE | _T.SELF: {
        "ru": "мой моя мою мое моей моего мои моих моим свой своя свою свое своей своего свои",
        "pl": "mój moja moją moje mojej mojego moich moim swój swoja swoją swoje swojej",
        "en": "my mine",
    },
    _T.SELF: {"ru": "я меня мне мной", "pl": "mam mi mnie ja", "en": "i me im ive"},
    _T.POINTS: {
        "ru": "балл балла баллов баллы баллами баллах бонус бонусы бонусов бонуса бонусами бонусах очки очков "
        "кэшбэк кешбек",
        "pl": "punkt punkty punktów punktami punktach pkt pkty punkcików bonus bonusy bonusów",
        "en": "point points pts bonus bonuses",
    },
    _T.BALANCE: {"ru": "баланс баланса балансе остаток", "pl": "saldo salda balans balansu", "en": "balance"},
    _T.ACCOUNT: {"ru": "счет счету счете аккаунт аккаунте", "pl": "konto koncie konta", "en": "account"},
    _T.QUANTITY: {"ru": "сколько скока скоко скок", "pl": "ile", "en": ""},
    _T.STATE: {
        "ru": "осталось накопилось накоплено накопил накопила текущий текущие доступно имеется",
        "pl": "zostało zostały uzbierałem uzbierałam nazbierałem nazbierałam zebrałem zebrałam aktualne aktualny "
        "aktualnie dostępne stan",
        # not "have": "do you have points?" asks whether there is a programme ("do I have" is SELF)
        "en": "got left remaining accumulated current available",
    },
    _T.CHECK: {
        "ru": "проверить проверь проверьте посмотреть посмотрю глянуть узнать узнаю чекнуть",
        "pl": "sprawdzić sprawdź sprawdzę sprawdźcie zobaczyć zobaczę",
        "en": "check see view look lookup",
    },
    _T.POINTS_USE: {
        "ru": "начисляются начисляют начисляется начислят начислить начисляете начисление начислили начислено "
        "копить копятся накопить собирать собрать получить получу получаю получать получаете получает "
        "заработать тратить потратить потрачу списать списывать списываются списываете обменять обмен "
        "использовать нужно надо дают дается даются дадут даете потерять потерял потеряла пропали исчезли",
        "pl": "zbierać zbieram zbiera zbierają zbierane zdobyć zdobywać zdobywa dostać dostaję dostanę "
        "naliczane naliczają nalicza naliczyć naliczacie naliczone wydać wydawać wykorzystać użyć używać "
        "wymienić wymienia wymiana wymieniać potrzebuję trzeba stracić straciłem straciłam kupić odebrać "
        "zniknęły",
        "en": "earn earned earning collect collecting get gets getting receive spend spending use using redeem "
        "redeeming exchange swap convert need lose lost buy worth value disappeared",
    },
    _T.RULES: {
        "ru": "сгорают сгорят сгорает сгорит сгорание сгорать срок действует действуют работает работают "
        "передать передавать перевести подарить поделиться объединить стоит стоят стоимость цена правила "
        "условия бесплатно",
        "pl": "wygasają wygasa wygasną wygaśnie przepadają przepadną przepada ważność ważne działa działają "
        "przekazać przekazywać przelać oddać podarować podzielić kosztuje koszt cena zasady regulamin warunki "
        "darmowa darmowe",
        "en": "expire expires expiry expired expiration work works transfer share combine merge cost costs price "
        "rules terms free valid",
    },
    _T.HISTORY: {"ru": "история историю истории историей", "pl": "historia historię historii", "en": "history"},
    _T.RECORDS: {
        "ru": "покупки покупок транзакции транзакций операции операций начисления начислений списания списаний "
        "визиты визитов",
        "pl": "zakupy zakupów transakcje transakcji naliczenia naliczeń operacje operacji wizyty wizyt",
        "en": "purchases transactions transaction activity statement receipts visits",
    },
    _T.RECENT: {
        "ru": "последние последних последняя последний прошлые недавние все всех",
        "pl": "ostatnie ostatnich ostatnia ostatni wszystkie poprzednie",
        "en": "recent last past previous all",
    },
    _T.HISTORY_OTHER: {
        "ru": "кафе кофейни кофейня заведения бренда компании основали основано создания кофе",
        "pl": "kawiarni kawiarnia lokalu firmy marki powstała powstania założona kawy kawa",
        "en": "cafe coffeehouse shop place company brand founded started story coffee",
    },
    _T.HUMAN: {
        "ru": "оператор оператора оператором оператору менеджер менеджера менеджером менеджеру админ админа "
        "админом админу администратор администратора администратором администратору консультант консультанта "
        "консультантом поддержка поддержку поддержкой поддержки техподдержка техподдержку",
        "pl": "operator operatora operatorem konsultant konsultanta konsultantem konsultantka konsultantki admin "
        "admina adminem administrator administratora menedżer menedżera menedżerem manager managera "
        "managerem kierownik kierownika kierownikiem kierowniczka wsparcie wsparcia support",
        "en": "human humans operator agent manager admin administrator support representative rep",
    },
    _T.PERSON: {
        "ru": "человек человека человеком человеку люди людьми сотрудник сотрудника сотрудником сотруднику кем "
        "кто кого нибудь официант официанта бариста персонал персоналом",
        "pl": "człowiek człowieka człowiekiem człowiekowi osoba osobą osoby osobę osób ludzie ludźmi pracownik "
        "pracownika pracownikiem pracownicy obsługa obsługi obsługą obsługę kimś ktoś kogoś kelner barista "
        "personel",
        "en": "person people someone somebody anyone anybody staff employee employees waiter barista",
    },
    _T.LIVE: {
        "ru": "живой живого живым живому живая настоящий настоящим настоящего реальный реальным реального",
        "pl": "żywy żywym żywego żywa żywą prawdziwy prawdziwym prawdziwą prawdziwa prawdziwego realny",
        "en": "real live actual",
    },
    _T.TALK: {
        "ru": "поговорить говорить пообщаться общаться связаться связь свяжите свяжитесь соедините соедини "
        "соединить переключите переключи переведите",
        "pl": "porozmawiać rozmawiać pogadać gadać połącz połączcie połączyć przełącz przełączcie kontakt "
        "kontaktu skontaktować skontaktuj",
        "en": "talk speak chat connect contact reach",
    },
    _T.CALL: {
        "ru": "позовите позови позвать пригласите нужен нужна хочу хотел хотела дайте дай",
        "pl": "zawołaj zawołajcie poprosić prosić poproszę proszę chcę chciałbym chciałabym potrzebuję daj dajcie",
        "en": "call need want get give transfer put",
    },
    _T.BOT: {
        "ru": "бот бота ботом боту робот роботом автоответчик",
        "pl": "bot bota botem botu robot robotem automat",
        "en": "bot robot machine",
    },
    _T.NEGATION: {"ru": "не нет", "pl": "nie", "en": "not dont don didnt didn doesnt isnt no"},
    _T.WHY: {
        "ru": "когда почему зачем отчего",
        "pl": "kiedy dlaczego czemu",
        "en": "when why",
    },
    _T.NUMBER: {
        "ru": "один одна два две двое трое три четыре четверо пять пятеро шесть шестеро семь восемь десять",
        "pl": "dwie dwa dwóch dwoje trzy trzech troje cztery czterech pięć pięciu sześć sześciu siedem osiem dziesięć",
        "en": "two three four five six seven eight ten twenty dozen couple",
    },
    _T.BOOKING: {
        "ru": "столик столика стол стола бронь бронировать забронировать бронирование зал зале мест места",
        "pl": "stolik stolika stół rezerwacja rezerwacji rezerwację zarezerwować sala sali miejsc miejsca",
        "en": "table tables book booking reserve reservation seats seat room party group",
    },
    _T.JOBS: {
        "ru": "работа работу работы работать вакансия вакансии вакансий устроиться резюме",
        "pl": "praca pracę pracy pracować zatrudniacie zatrudnienie rekrutacja cv",
        "en": "job jobs hiring hire vacancy vacancies career careers cv resume",
    },
    _T.HELLO: {
        "ru": "привет приветик приветствую здравствуйте здравствуй здрасте здрасьте здрасти хай хелло хеллоу "
        "салют ку прив",
        "pl": "cześć cześciu hej hejka hejo heja siema siemka siemano elo witam witajcie witaj halo hello hi",
        "en": "hi hello hey hiya heya hallo howdy hola yo greetings sup",
    },
    _T.THANKS: {
        "ru": "спасибо спасибки спс пасиб пасибо благодарю благодарим благодарствую мерси сенкс",
        "pl": "dzięki dziękuję dziękujemy dziękówa dziex thx thanks",
        "en": "thanks thank thx ty tysm tnx thanx cheers appreciate appreciated",
    },
    _T.PART: {
        "ru": "добрый доброе доброго доброй день дня вечер вечера утро утра ночи",
        "pl": "dzień dobry dobrego wieczór wieczora",
        "en": "good morning afternoon evening day",
    },
    _T.POLITE: {
        "ru": "большое огромное вам вас тебе очень всем ребята друзья пожалуйста плиз плз пж ок окей ok хорошо "
        "понял поняла понятно ясно все отлично супер класс круто за помощь информацию ответ еще снова пока "
        "свидания",
        "pl": "bardzo wielkie serdeczne serdecznie stokrotne piękne pięknie wam ci za pomoc informację odpowiedź "
        "proszę ok okej dobra super spoko świetnie jasne rozumiem kochani wszystkim narazie pa papa widzenia "
        "zobaczenia",
        "en": "so much many very a lot you u ya guys all everyone everybody there folks team for the help info "
        "answer again please pls plz ok okay great perfect cool awesome nice got it alright bye goodbye cya",
    },
}

# Two words that say together what neither says alone; both words get the tags.
_PAIRS: dict[tuple[str, str], _T] = {
    ("добрый", "день"): _T.HELLO,
    ("добрый", "вечер"): _T.HELLO,
    ("доброе", "утро"): _T.HELLO,
    ("доброго", "дня"): _T.HELLO,
    ("доброго", "утра"): _T.HELLO,
    ("доброго", "вечера"): _T.HELLO,
    ("как", "дела"): _T.HELLO,
    ("dzien", "dobry"): _T.HELLO,
    ("dobry", "wieczor"): _T.HELLO,
    ("dobry", "dzien"): _T.HELLO,
    ("co", "tam"): _T.HELLO,
    ("jak", "leci"): _T.HELLO,
    ("good", "morning"): _T.HELLO,
    ("good", "afternoon"): _T.HELLO,
    ("good", "evening"): _T.HELLO,
    ("good", "day"): _T.HELLO,
    ("whats", "up"): _T.HELLO,
    ("how", "are"): _T.PART,  # "hi, how are you"
    ("how", "many"): _T.QUANTITY,
    ("how", "much"): _T.QUANTITY,
    ("stan", "konta"): _T.BALANCE,
    ("stan", "konto"): _T.BALANCE,
    ("stan", "punktow"): _T.BALANCE,
    ("на", "карте"): _T.CARD_OTHER,  # "где вы на карте": a map (their card is "на моей карте")
    ("show", "up"): _T.RULES,  # "when do my points show up" is not "show me"
    ("до", "свидания"): _T.POLITE,
    ("do", "widzenia"): _T.POLITE,
    ("do", "zobaczenia"): _T.POLITE,
}


def _build() -> tuple[dict[str, dict[str, _T]], dict[str, list[str]], dict[tuple[str, str], _T]]:
    lexicon: dict[str, dict[str, _T]] = {language: {} for language in LANGUAGES}
    for tags, by_language in _LEXICON.items():
        for language, written in by_language.items():
            for word in normalise(written).split():
                lexicon[language][word] = lexicon[language].get(word, _T.NONE) | tags
    # Only words of four letters or more are ever reached through a typo.
    fuzzy = {language: sorted(w for w in words if len(w) >= 4) for language, words in lexicon.items()}
    pairs = {(normalise(a), normalise(b)): tags for (a, b), tags in _PAIRS.items()}
    return lexicon, fuzzy, pairs


_WORDS, _FUZZY, _PAIR_TAGS = _build()
_STOP = {language: frozenset(normalise(" ".join(words)).split()) for language, words in STOPWORDS.items()}
_CYRILLIC = re.compile(r"[\u0400-\u04ff]")

# The tags a word may carry in a message that is nothing but a greeting or thanks.
_PLEASANTRY = _T.HELLO | _T.THANKS | _T.PART | _T.POLITE | _T.BOT
MAX_NAMES = 2  # capitalised unknown words (a name, "Acme Café") allowed beside a greeting or thanks


def _edits_allowed(length: int) -> int:
    """Typos forgiven in a word this long (the shorter of the two compared)."""
    if length <= 3:
        return 0
    if length == 4:
        return 1  # a swap only: see _close
    return 1 if length <= 7 else 2


def _close(word: str, candidate: str) -> bool:
    shorter = min(len(word), len(candidate))
    allowed = _edits_allowed(shorter)
    if allowed == 0 or OSA.distance(word, candidate) > allowed:
        return False
    if shorter == 4:  # "crad" is "card", but "cart", "care" and "hard" are not
        return len(word) == len(candidate) and Levenshtein.distance(word, candidate) == 2
    return True


@lru_cache(maxsize=8192)
def _resolve(word: str, language: str) -> tuple[str, _T]:
    """The lexicon word this word is (itself or through a typo) and its tags: the person's
    language first, then the other two."""
    if word.isdigit():
        return word, _T.NUMBER
    if word in _WORDS[language]:
        return word, _WORDS[language][word]
    if word in _STOP.get(language, frozenset()):
        return word, _T.NONE  # a function word of their language, not another language's word
    order = [language] + [other for other in LANGUAGES if other != language]
    for other in order[1:]:
        if word in _WORDS[other]:
            return word, _WORDS[other][word]
    if len(word) < 4:
        return word, _T.NONE
    cyrillic = bool(_CYRILLIC.search(word))
    cutoff = _edits_allowed(len(word))
    for other in order:
        if (other == "ru") != cyrillic:  # a typo does not change the alphabet
            continue
        for candidate, _, _ in process.extract(word, _FUZZY[other], scorer=OSA.distance, score_cutoff=cutoff, limit=4):
            if _close(word, candidate):
                return candidate, _WORDS[other][candidate]
    return word, _T.NONE


@dataclass(frozen=True, slots=True)
class _Word:
    text: str  # the lexicon's spelling when it was recognised, else as normalised
    tags: _T
    capital: bool  # typed with a capital letter: perhaps a name


def _read(text: str, language: str) -> list[_Word]:
    words: list[_Word] = []
    for chunk in text.split():
        # Polish "kartą" (by card) and "karta" (the card) are one word once the ogonek is gone.
        paying = chunk.lower().startswith("kartą")
        capital = next((ch.isupper() for ch in chunk if ch.isalpha()), False)
        for token in normalise(chunk).split():
            spelled, tags = _resolve(token, language)
            if paying and spelled == "karta":
                tags = _T.PAY
            words.append(_Word(spelled, tags, capital))
    for index in range(len(words) - 1):
        pair = _PAIR_TAGS.get((words[index].text, words[index + 1].text))
        if pair is not None:
            for at in (index, index + 1):
                words[at] = _Word(words[at].text, words[at].tags | pair, words[at].capital)
    return words


def _only(words: Sequence[_Word], allowed: _T) -> bool:
    """Every word carries one of these tags: the message is nothing but that."""
    return all(word.tags & allowed for word in words)


def _all_tags(words: Iterable[_Word]) -> _T:
    tags = _T.NONE
    for word in words:
        tags |= word.tags
    return tags


def _human(words: Sequence[_Word], tags: _T) -> bool:
    if tags & _T.JOBS:  # "are you hiring staff?", "хочу работать у вас менеджером"
        return False
    if tags & _T.HUMAN:
        return True
    if tags & _T.TALK and tags & _T.BOT and tags & _T.NEGATION:  # "не хочу говорить с ботом"
        return True
    if tags & _T.LIVE and tags & _T.TALK:  # "поговорить с живым"
        return True
    if not tags & _T.PERSON or tags & (_T.NUMBER | _T.BOOKING):  # "столик на 4 человека"
        return False
    return bool(tags & (_T.TALK | _T.CALL | _T.LIVE | _T.BOT)) or _only(words, _T.PERSON | _T.SELF | _PLEASANTRY)


def _history(words: Sequence[_Word], tags: _T) -> bool:
    if tags & (_T.NEGATION | _T.WHY):  # "почему история пустая": a complaint, for a person
        return False
    if tags & _T.HISTORY:  # but not "the history of the café" (while "my coffee history" is theirs)
        return not tags & _T.HISTORY_OTHER or bool(tags & _T.SELF)
    if not tags & _T.RECORDS or tags & (_T.POINTS_USE | _T.RULES | _T.PAY):
        return False
    return bool(tags & (_T.SELF | _T.SHOW | _T.CHECK | _T.RECENT)) or _only(words, _T.RECORDS | _T.POINTS | _PLEASANTRY)


def _balance(words: Sequence[_Word], tags: _T) -> bool:
    if tags & (_T.POINTS_USE | _T.RULES | _T.PAY):  # how points are earned, spent, expire, paid with
        return False
    if tags & (_T.NEGATION | _T.WHY):  # "баллы не пришли", "why is my balance zero": for a person
        return False
    if tags & _T.BALANCE:
        return True
    if tags & _T.POINTS:
        return bool(tags & (_T.SELF | _T.STATE | _T.CHECK | _T.SHOW)) or _only(
            words, _T.POINTS | _T.QUANTITY | _T.LOYALTY | _PLEASANTRY
        )
    return bool(tags & _T.QUANTITY and tags & _T.SELF and tags & _T.ACCOUNT)  # "ile mam na koncie"


def _card(words: Sequence[_Word], tags: _T) -> bool:
    if not tags & _T.CARD or tags & (_T.PAY | _T.CARD_OTHER | _T.RULES):
        return False
    if tags & _T.ACQUIRE and not tags & _T.POSSESSIVE:  # "how do I get a card" asks to join
        return False
    return bool(tags & (_T.POSSESSIVE | _T.SHOW)) or _only(
        words, _T.CARD | _T.CODE | _T.LOYALTY | _T.SELF | _PLEASANTRY
    )


def _pleasantry(words: Sequence[_Word], tags: _T, asks: bool) -> Intent | None:
    if not tags & (_T.HELLO | _T.THANKS):
        return None
    if any(word.tags and not word.tags & _PLEASANTRY for word in words):
        return None
    names = [word for word in words if not word.tags]
    if names and (asks or len(names) > MAX_NAMES or not all(word.capital for word in names)):
        return None  # "hi, do you have vegan milk?" is a question
    return Intent.THANKS if tags & _T.THANKS else Intent.HELLO


def recognise(text: str, language: str) -> Intent | None:
    """The intent of a customer's message, or None to let the FAQ matcher have it.

    `language` is the person's chosen one ("ru", "pl" or "en"): their words are read in it first.
    """
    words = _read(text, language if language in LANGUAGES else "en")
    if not words:
        return None
    tags = _all_tags(words)
    if _human(words, tags):
        return Intent.HUMAN
    if _history(words, tags):
        return Intent.HISTORY
    if _balance(words, tags):
        return Intent.BALANCE
    if _card(words, tags):
        return Intent.CARD
    return _pleasantry(words, tags, asks="?" in text or "？" in text)
