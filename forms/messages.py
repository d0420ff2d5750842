"""Chinese and English wording of the answer validation codes.

Validation returns stable codes (``required``, ``too_small:0``) so that the server, the PWA and
tests agree on them; people read them through ``describe`` in their language.
"""

from __future__ import annotations

DEFAULT_LANGUAGE = "zh-CN"

# A code is either a key here, or "<key>:<argument>" where the template's {0} is the argument.
MESSAGES: dict[str, dict[str, str]] = {
    "zh-CN": {
        "unknown_field": "不是本表的字段",
        "not_relevant": "根据其他回答，此项不应填写",
        "required": "必填",
        "wrong_type:text": "应为文字",
        "wrong_type:number": "应为数字",
        "wrong_type:boolean": "应为“是”或“否”",
        "wrong_type:date": "应为日期（格式 YYYY-MM-DD）",
        "wrong_type:single_choice": "应为一个选项",
        "wrong_type:multiple_choice": "应为选项列表",
        "wrong_type:person": "应为本户人员",
        "wrong_type:photo": "应为照片（SHA-256 摘要）",
        "invalid_date": "日历上没有这一天",
        "not_a_choice": "不是可选的选项",
        "duplicate_choice": "选项重复",
        "unknown_person": "不是本户人员",
        "too_small": "不能小于 {0}",
        "too_large": "不能大于 {0}",
        "too_long": "不能超过 {0} 个字",
        "wrong_type:integer": "应为整数",
        "wrong_type:range": "应为数字",
        "wrong_type:time": "应为时间（格式 HH:MM）",
        "wrong_type:datetime": "应为日期和时间（格式 YYYY-MM-DDTHH:MM）",
        "wrong_type:note": "此项是说明，不填写",
        "wrong_type:hidden": "应为文字",
        "wrong_type:geopoint": "应为一个位置（纬度、经度）",
        "wrong_type:geotrace": "应为至少 2 个位置连成的线",
        "wrong_type:geoshape": "应为至少 3 个位置围成的范围",
        "invalid_time": "一天中没有这个时间",
        "off_step": "须按 {0} 的间隔取值",
        "not_offered": "根据前面的回答，不能选这一项",
        "constraint": "不符合本题的要求",
        "wrong_type:repeat": "应为若干条记录",
        "wrong_type:audio": "应为录音（SHA-256 摘要）",
        "wrong_type:video": "应为视频（SHA-256 摘要）",
        "wrong_type:file": "应为文件（SHA-256 摘要）",
        "wrong_type:barcode": "应为条码文字",
        "wrong_type:rank": "应为排好顺序的选项列表",
        "entry_count": "应有 {0} 条记录",
        "duplicate_person": "同一人员出现了两次",
        "calculation_mismatch": "计算结果与其他回答不一致",
        "wrong_type:calculate": "应为计算结果（文字、数字或是否）",
    },
    "en": {
        "unknown_field": "is not a field of this form",
        "not_relevant": "does not apply given the other answers",
        "required": "is required",
        "wrong_type:text": "must be text",
        "wrong_type:number": "must be a number",
        "wrong_type:boolean": "must be yes or no",
        "wrong_type:date": "must be a date written YYYY-MM-DD",
        "wrong_type:single_choice": "must be one choice",
        "wrong_type:multiple_choice": "must be a list of choices",
        "wrong_type:person": "must be a person of the household",
        "wrong_type:photo": "must be a photo (its SHA-256 digest)",
        "invalid_date": "is not a day of the calendar",
        "not_a_choice": "is not one of the choices",
        "duplicate_choice": "lists the same choice twice",
        "unknown_person": "is not a person of this household",
        "too_small": "must be at least {0}",
        "too_large": "must be at most {0}",
        "too_long": "must be at most {0} characters",
        "wrong_type:integer": "must be a whole number",
        "wrong_type:range": "must be a number",
        "wrong_type:time": "must be a time written HH:MM",
        "wrong_type:datetime": "must be a date and time written YYYY-MM-DDTHH:MM",
        "wrong_type:note": "is a note and takes no answer",
        "wrong_type:hidden": "must be text",
        "wrong_type:geopoint": "must be a location (latitude, longitude)",
        "wrong_type:geotrace": "must be a line of at least 2 locations",
        "wrong_type:geoshape": "must be an area of at least 3 locations",
        "invalid_time": "is not a time of the day",
        "off_step": "must be in steps of {0}",
        "not_offered": "is not offered given the earlier answers",
        "constraint": "does not meet the question's condition",
        "wrong_type:repeat": "must be a list of entries",
        "wrong_type:audio": "must be a recording (its SHA-256 digest)",
        "wrong_type:video": "must be a video (its SHA-256 digest)",
        "wrong_type:file": "must be a file (its SHA-256 digest)",
        "wrong_type:barcode": "must be the text of a barcode",
        "wrong_type:rank": "must be a list of choices in order",
        "entry_count": "must have {0} entries",
        "duplicate_person": "names the same person twice",
        "calculation_mismatch": "does not match the calculation from the other answers",
        "wrong_type:calculate": "should be a calculated value (text, a number or yes/no)",
    },
}


def describe(code: str, lang: str = DEFAULT_LANGUAGE) -> str:
    """The message of a validation code in ``lang`` (any ``en-*`` is English, else Chinese)."""
    messages = MESSAGES[_language(lang)]
    plain = messages.get(code)
    if plain is not None and "{0}" not in plain:
        return plain
    key, _, argument = code.partition(":")
    template = messages.get(key, "")
    if not argument or "{0}" not in template:
        raise ValueError(f"unknown message code {code!r}")
    return template.format(argument)


def _language(lang: str) -> str:
    """The supported language closest to a requested one; Chinese is the default."""
    if lang in MESSAGES:
        return lang
    if lang.lower().split("-")[0] == "en":
        return "en"
    return DEFAULT_LANGUAGE
