"""Password rules, the same wherever a password is set (admin form, own profile, CLI).

A length floor plus a refusal of the passwords attackers try first: the e-mail address
itself and the most common passwords of breach lists (only those long enough to pass the
length rule need listing). No composition rules (digits, symbols): NIST SP 800-63B §5.1.1.2
recommends length and a blocklist instead, since composition rules mostly produce `Password1!`.
"""

from __future__ import annotations

from ..errors import N_, ValidationError

MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 200

# Lower-cased; compared with the lower-cased password. Drawn from the top of public breach
# lists (RockYou, the yearly "most common passwords" lists, Chinese lists such as the CSDN
# leak), keeping those of 10+ characters.
COMMON_PASSWORDS: frozenset[str] = frozenset({
    "0000000000", "0123456789", "0987654321", "1111111111", "1122334455", "1212121212",
    "1231231231", "123123123123", "1234512345", "1234567890", "12345678901", "1234567890a",
    "1234567891", "12345678910", "123456789a", "123456789q", "1314520520", "1314521521",
    "1357924680", "1472583690", "147258369a", "1a2b3c4d5e", "1q2w3e4r5t", "1q2w3e4r5t6y",
    "1qaz2wsx3edc", "1qazxsw23edc", "2222222222", "3141592653", "5201314520", "5211314521",
    "6666666666", "6666688888", "8888888888", "9876543210", "987654321a", "a123456789",
    "a1234567890", "a1b2c3d4e5", "aa12345678", "aa123456789", "aaaaaaaaaa", "abc1234567",
    "abcd123456", "abcdefghij", "admin12345", "admin123456", "adminadmin", "administrator",
    "aini1314520", "asd1234567", "asdf123456", "asdfghjkl1", "asdfghjkl;", "baseball123",
    "changeme12", "changeme123", "contentops", "contentops1", "contentops123",
    "correct horse battery staple", "correcthorsebatterystaple", "dragon12345", "football123",
    "iloveyou12",
    "iloveyou123", "letmein123", "monkey12345", "p@ssw0rd12", "p@ssw0rd123", "passw0rd12",
    "passw0rd123", "password1!", "password12", "password123", "password123!", "password1234",
    "princess123", "q1w2e3r4t5", "qazwsxedcrfv", "qq1234567890", "qqqqqqqqqq", "qwer123456",
    "qwerty1234", "qwerty12345", "qwerty123456", "qwertyuiop", "qwertyuiop123", "starwars123",
    "sunshine123", "superman123", "trustno1234", "welcome123", "welcome1234", "woaini123456",
    "woaini1314", "woaini5201314", "wodemima123", "zaq12wsxcde3", "zxcvbnm123", "zxcvbnmasdf",
})


def password_errors(password: str, email: str | None = None) -> list[str]:
    """Msgids of the rules `password` breaks (empty when it may be used)."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return [N_("Use at least 10 characters.")]
    if len(password) > MAX_PASSWORD_LENGTH:
        return [N_("Use at most 200 characters.")]
    folded = password.strip().casefold()
    if email:
        address = email.strip().casefold()
        if folded in (address, address.split("@")[0]):
            return [N_("Do not use your e-mail address as your password.")]
    if folded in COMMON_PASSWORDS:
        return [N_("This password is among the most common ones; choose another.")]
    return []


def check_password(password: str, email: str | None = None) -> None:
    """Raise a ValidationError on the `password` field if a rule is broken."""
    errors = password_errors(password, email)
    if errors:
        raise ValidationError({"password": errors})
