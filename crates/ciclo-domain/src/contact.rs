//! Contact newtypes: an [`Email`] or a [`Phone`] exists only in normalised, valid form.

use crate::FieldError;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A syntactically valid email address, trimmed, with the domain in lower case.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(FieldError::new("invalid_email", "email", "email is empty"));
        }
        let parsed = email_address::EmailAddress::from_str(trimmed).map_err(|e| {
            FieldError::new(
                "invalid_email",
                "email",
                format!("not a valid email address: {e}"),
            )
        })?;
        if !parsed.domain().contains('.') {
            return Err(FieldError::new(
                "invalid_email",
                "email",
                "the domain has no dot",
            ));
        }
        // Local parts are case-sensitive by the RFC but not in practice; ciclo matches identities
        // case-insensitively so that "Ana@X.com" and "ana@x.com" are one person.
        Ok(Email(
            format!("{}@{}", parsed.local_part(), parsed.domain()).to_lowercase(),
        ))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A phone number in E.164 form (`+5511987654321`). Numbers written without a country code are
/// read in the default region (Brazil unless the workspace says otherwise).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Phone(String);

impl Phone {
    pub fn parse(raw: &str, default_region: &str) -> Result<Self, FieldError> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(FieldError::new("invalid_phone", "phone", "phone is empty"));
        }
        let region = phonenumber::country::Id::from_str(&default_region.to_ascii_uppercase()).ok();
        let number = phonenumber::parse(region, trimmed).map_err(|e| {
            FieldError::new("invalid_phone", "phone", format!("not a phone number: {e}"))
        })?;
        if !phonenumber::is_valid(&number) {
            return Err(FieldError::new(
                "invalid_phone",
                "phone",
                "not a valid number for its country",
            ));
        }
        Ok(Phone(
            number.format().mode(phonenumber::Mode::E164).to_string(),
        ))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Phone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalised_and_validated() {
        assert_eq!(
            Email::parse("  Ana.Souza@Exemplo.COM.br ")
                .unwrap()
                .as_str(),
            "ana.souza@exemplo.com.br"
        );
        for bad in ["", "ana", "ana@", "@x.com", "ana@localhost", "a b@x.com"] {
            assert_eq!(
                Email::parse(bad).unwrap_err().code,
                "invalid_email",
                "{bad}"
            );
        }
    }

    #[test]
    fn phones_become_e164_in_the_default_region() {
        assert_eq!(
            Phone::parse("(11) 98765-4321", "BR").unwrap().as_str(),
            "+5511987654321"
        );
        assert_eq!(
            Phone::parse("+55 21 3456-7890", "BR").unwrap().as_str(),
            "+552134567890"
        );
        assert_eq!(
            Phone::parse("+1 415 555 2671", "BR").unwrap().as_str(),
            "+14155552671"
        );
        for bad in ["", "123", "abc", "+55 11 1234"] {
            assert_eq!(
                Phone::parse(bad, "BR").unwrap_err().code,
                "invalid_phone",
                "{bad}"
            );
        }
    }
}
