//! Approximate location of an IP address, from a MaxMind GeoLite2 City database the operator provides
//! (`geoip_city_database`; none by default, and then nothing is looked up). Shown next to a user's
//! sessions; never a security decision on its own.

use std::{net::IpAddr, path::Path};

use maxminddb::{MaxMindDbError, Reader, geoip2};

pub struct GeoIp {
    city: Option<Reader<Vec<u8>>>,
}

impl GeoIp {
    pub fn disabled() -> Self {
        Self { city: None }
    }

    pub fn open(city_database: Option<&Path>) -> Result<Self, MaxMindDbError> {
        Ok(Self {
            city: city_database.map(Reader::open_readfile).transpose()?,
        })
    }

    /// "London, United Kingdom", "Sweden", or `None` when the address is unknown (private, loopback,
    /// or not in the database) or no database is configured.
    pub fn place(&self, ip: &str) -> Option<String> {
        let reader = self.city.as_ref()?;
        let ip: IpAddr = ip.parse().ok()?;
        let city: geoip2::City = reader.lookup(ip).ok()?.decode().ok()??;
        let country = city.country.names.english;
        match (city.city.names.english, country) {
            (Some(city), Some(country)) => Some(format!("{city}, {country}")),
            (None, Some(country)) => Some(country.to_owned()),
            (Some(city), None) => Some(city.to_owned()),
            (None, None) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_from_the_maxmind_test_database() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/geoip/GeoLite2-City-Test.mmdb");
        let geo = GeoIp::open(Some(&path)).expect("test database");
        assert_eq!(geo.place("81.2.69.142").as_deref(), Some("London, United Kingdom"));
        assert_eq!(geo.place("89.160.20.113").as_deref(), Some("Linköping, Sweden"));
        assert_eq!(geo.place("127.0.0.1"), None);
        assert_eq!(geo.place("not an address"), None);
        assert_eq!(GeoIp::disabled().place("81.2.69.142"), None);
    }
}
