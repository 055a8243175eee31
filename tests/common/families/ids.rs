//! Tax IDs and IBANs with their real check digits, VAT rates and currencies, per country.

use super::super::pdf::{cif, Rng};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Country {
    Es,
    Gb,
    De,
    Fr,
    Nl,
    It,
    Pt,
    Ch,
    Us,
    My,
    In,
}

impl Country {
    /// ISO 4217 code of the currency a supplier there invoices in.
    pub fn currency(self) -> &'static str {
        match self {
            Country::Gb => "GBP",
            Country::Ch => "CHF",
            Country::Us => "USD",
            Country::My => "MYR",
            Country::In => "INR",
            _ => "EUR",
        }
    }

    /// Standard VAT rate and a reduced one, in percent.
    pub fn vat_rates(self) -> (&'static str, &'static str) {
        match self {
            Country::Es => ("21", "10"),
            Country::Gb => ("20", "5"),
            Country::De => ("19", "7"),
            Country::Fr => ("20", "5.5"),
            Country::Nl => ("21", "9"),
            Country::It => ("22", "10"),
            Country::Pt => ("23", "6"),
            Country::Ch => ("8.1", "2.6"),
            Country::Us => ("8.875", "8.875"),
            Country::My => ("8", "6"),
            Country::In => ("18", "5"),
        }
    }

    /// A VAT / tax ID as the country prints it, with correct check digits.
    pub fn tax_id(self, r: &mut Rng) -> String {
        match self {
            Country::Es => {
                let letter = *r.pick(&['A', 'B', 'B', 'B']);
                cif(letter, &format!("{:07}", r.range(1_000_000, 9_999_999)))
            }
            Country::De => {
                let base: Vec<u32> =
                    (0..8).map(|k| if k == 0 { r.range(1, 9) } else { r.range(0, 9) } as u32).collect();
                format!("DE{}{}", digits(&base), de_check(&base))
            }
            Country::Fr => {
                let siren = luhn_number(r, 9);
                let n: u64 = siren.parse().unwrap();
                format!("FR{:02}{siren}", (12 + 3 * (n % 97)) % 97)
            }
            Country::Nl => loop {
                let d: Vec<u32> = (0..8).map(|_| r.range(0, 9) as u32).collect();
                let s: u32 = d.iter().enumerate().map(|(i, x)| x * (9 - i as u32)).sum();
                let check = s % 11;
                if check < 10 && d[0] != 0 {
                    break format!("NL{}{check}B01", digits(&d));
                }
            },
            Country::It => {
                let d: Vec<u32> = (0..10).map(|_| r.range(0, 9) as u32).collect();
                let s: u32 = d
                    .iter()
                    .enumerate()
                    .map(|(i, &x)| {
                        if i % 2 == 0 {
                            x
                        } else if 2 * x > 9 {
                            2 * x - 9
                        } else {
                            2 * x
                        }
                    })
                    .sum();
                format!("IT{}{}", digits(&d), (10 - s % 10) % 10)
            }
            Country::Pt => loop {
                let mut d: Vec<u32> = vec![*r.pick(&[5, 5, 5, 2, 1])];
                d.extend((0..7).map(|_| r.range(0, 9) as u32));
                let s: u32 = d.iter().enumerate().map(|(i, x)| x * (9 - i as u32)).sum();
                let check = 11 - s % 11;
                if check < 10 {
                    break format!("PT{}{check}", digits(&d));
                }
                if check == 11 {
                    break format!("PT{}0", digits(&d));
                }
            },
            Country::Gb => {
                let d: Vec<u32> = (0..7).map(|k| if k == 0 { r.range(1, 9) } else { r.range(0, 9) } as u32).collect();
                let s: u32 = d.iter().enumerate().map(|(i, x)| x * (8 - i as u32)).sum();
                let check = (97 - s % 97) % 97;
                let all = format!("{}{check:02}", digits(&d));
                format!("GB {} {} {}", &all[..3], &all[3..7], &all[7..])
            }
            Country::Ch => loop {
                let d: Vec<u32> = (0..8).map(|_| r.range(0, 9) as u32).collect();
                let s: u32 = d.iter().zip([5, 4, 3, 2, 7, 6, 5, 4]).map(|(x, w)| x * w).sum();
                let check = (11 - s % 11) % 11;
                if check < 10 {
                    let all = format!("{}{check}", digits(&d));
                    break format!("CHE-{}.{}.{} MWST", &all[..3], &all[3..6], &all[6..]);
                }
            },
            Country::Us => format!("{:02}-{:07}", r.range(10, 98), r.range(1_000_000, 9_999_999)),
            Country::My => format!("W10-{:04}-{:08}", r.range(1000, 2599), r.range(1, 99_999_999)),
            Country::In => gstin(r),
        }
    }

    /// An IBAN of this country with valid ISO 13616 check digits, printed in groups of four; `None` where IBANs
    /// are not used.
    pub fn iban(self, r: &mut Rng) -> Option<String> {
        let mut num = |n: usize| -> String { (0..n).map(|_| char::from(b'0' + r.below(10) as u8)).collect() };
        let (cc, bban) = match self {
            Country::Es => ("ES", num(20)),
            Country::De => ("DE", num(18)),
            Country::Fr => ("FR", num(23)),
            Country::Nl => {
                ("NL", format!("{}{}", ["ABNA", "INGB", "RABO", "TRIO"][(num(1).as_bytes()[0] % 4) as usize], num(10)))
            }
            Country::It => ("IT", format!("X{}", num(22))),
            Country::Pt => ("PT", num(21)),
            Country::Gb => {
                ("GB", format!("{}{}", ["NWBK", "BARC", "LOYD", "MIDL"][(num(1).as_bytes()[0] % 4) as usize], num(14)))
            }
            Country::Ch => ("CH", num(17)),
            _ => return None,
        };
        Some(group4(&iban_with_check(cc, &bban)))
    }
}

fn digits(d: &[u32]) -> String {
    d.iter().map(|x| char::from_digit(*x, 10).unwrap()).collect()
}

/// German USt-IdNr check digit (ISO 7064 MOD 11,10).
fn de_check(d: &[u32]) -> u32 {
    let mut product = 10;
    for x in d {
        let mut sum = (x + product) % 10;
        if sum == 0 {
            sum = 10;
        }
        product = (2 * sum) % 11;
    }
    let check = 11 - product;
    if check == 10 {
        0
    } else {
        check
    }
}

/// An `n`-digit number whose last digit is its Luhn check digit (a French SIREN).
fn luhn_number(r: &mut Rng, n: usize) -> String {
    let d: Vec<u32> = (0..n - 1).map(|k| if k == 0 { r.range(1, 9) } else { r.range(0, 9) } as u32).collect();
    let s: u32 = d
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &x)| {
            if i % 2 == 0 {
                if 2 * x > 9 {
                    2 * x - 9
                } else {
                    2 * x
                }
            } else {
                x
            }
        })
        .sum();
    format!("{}{}", digits(&d), (10 - s % 10) % 10)
}

/// An Indian GSTIN: state code, PAN, entity number, `Z`, and the base-36 check character.
fn gstin(r: &mut Rng) -> String {
    const A: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    let letter = |r: &mut Rng| char::from(b'A' + r.below(26) as u8);
    let mut s = format!("{:02}", r.range(1, 37));
    for _ in 0..3 {
        s.push(letter(r));
    }
    s.push('C'); // a company
    s.push(letter(r));
    s.push_str(&format!("{:04}", r.range(0, 9999)));
    s.push(letter(r));
    s.push('1');
    s.push('Z');
    let sum: usize = s
        .bytes()
        .enumerate()
        .map(|(i, b)| {
            let v = A.iter().position(|a| *a == b).unwrap() * if i % 2 == 0 { 1 } else { 2 };
            v / 36 + v % 36
        })
        .sum();
    s.push(char::from(A[(36 - sum % 36) % 36]));
    s
}

/// `CC` + check digits + BBAN, the check digits by ISO 13616 (mod 97 of the rearranged number).
pub fn iban_with_check(cc: &str, bban: &str) -> String {
    let rearranged = format!("{bban}{cc}00");
    let rem = rearranged.chars().fold(0u32, |acc, c| {
        let v = c.to_digit(36).expect("alphanumeric");
        if v < 10 {
            (acc * 10 + v) % 97
        } else {
            (acc * 100 + v) % 97
        }
    });
    format!("{cc}{:02}{bban}", 98 - rem)
}

pub fn group4(s: &str) -> String {
    s.as_bytes().chunks(4).map(|c| String::from_utf8_lossy(c).into_owned()).collect::<Vec<_>>().join(" ")
}

/// True when an IBAN's check digits hold.
pub fn iban_valid(iban: &str) -> bool {
    let s: String = iban.chars().filter(|c| c.is_ascii_alphanumeric()).collect();
    let rearranged = format!("{}{}", &s[4..], &s[..4]);
    rearranged.chars().fold(0u32, |acc, c| {
        let v = c.to_digit(36).unwrap();
        if v < 10 {
            (acc * 10 + v) % 97
        } else {
            (acc * 100 + v) % 97
        }
    }) == 1
}
