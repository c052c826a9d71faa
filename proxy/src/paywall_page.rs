//! The HTML paywall page browsers get instead of a JSON 402: what is sold, the price, network and recipient,
//! and a button that pays with an injected wallet (EIP-1193, `eth_signTypedData_v4`) and loads the content.
//! Plain HTML and JS in `paywall.html`, no CDN; every value is HTML-escaped, the offer JSON is made safe to sit
//! inside a `<script>` block.

use protocol::Asset;
use protocol::money::format_usd;
use protocol::wire::v2;

const TEMPLATE: &str = include_str!("paywall.html");

pub fn render(offer: &v2::PaymentRequired, asset: &Asset) -> String {
    let Some(requirement) = offer.accepts.first() else {
        return String::new();
    };
    let price = format!("{} {}", format_usd(requirement.amount, asset.decimals), asset.symbol);
    let offer_json = serde_json::to_string(offer)
        .unwrap_or_default()
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026");
    let description = escape(offer.resource.description.as_deref().unwrap_or("Paid content"));
    let values = [
        ("OFFER_JSON", offer_json),
        ("DESCRIPTION", description),
        ("RESOURCE", escape(&offer.resource.url)),
        ("PRICE", escape(&price)),
        ("NETWORK", escape(&requirement.network)),
        ("PAY_TO", escape(&requirement.pay_to.to_checksum(None))),
    ];
    fill(TEMPLATE, &values)
}

/// One pass over the template, so a value that happens to contain `{{NAME}}` is never expanded.
fn fill(template: &str, values: &[(&str, String)]) -> String {
    let mut out = String::with_capacity(template.len() + 1024);
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match after.find("}}").and_then(|end| {
            let name = &after[..end];
            values.iter().find(|(n, _)| *n == name).map(|(_, v)| (v, end))
        }) {
            Some((value, end)) => {
                out.push_str(value);
                rest = &after[end + 2..];
            }
            None => {
                out.push_str("{{");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::primitives::{Address, U256};
    use protocol::wire::{Extra, ResourceInfo};

    #[test]
    fn values_are_escaped_and_the_offer_is_embedded() {
        let offer = v2::PaymentRequired {
            x402_version: protocol::version::Version,
            error: Some("pay".into()),
            resource: ResourceInfo {
                url: "http://x/a?b=<script>".into(),
                description: Some("Weather </script><b>now</b>".into()),
                mime_type: None,
            },
            accepts: vec![v2::PaymentRequirements {
                scheme: "exact".into(),
                network: "eip155:5042002".into(),
                amount: U256::from(10_000),
                asset: protocol::network::ARC_USDC,
                pay_to: Address::repeat_byte(0xbe),
                max_timeout_seconds: 60,
                extra: Some(Extra::eip712("USDC", "2")),
            }],
            extensions: None,
        };
        let page = render(&offer, &Asset::arc_usdc());
        assert!(!page.contains("{{"), "every placeholder filled");
        assert!(page.contains("Weather &lt;/script&gt;&lt;b&gt;now&lt;/b&gt;"));
        assert!(!page.contains("</script><b>"));
        assert!(page.contains("$0.01 USDC"), "price shown");
        assert!(page.contains("eip155:5042002"));
        assert!(page.contains(&Address::repeat_byte(0xbe).to_checksum(None)));
        let start = page.find("id=\"x402-offer\"").unwrap();
        let json_start = page[start..].find('>').unwrap() + start + 1;
        let json_end = page[json_start..].find("</script>").unwrap() + json_start;
        let embedded: v2::PaymentRequired = serde_json::from_str(&page[json_start..json_end]).unwrap();
        assert_eq!(embedded, offer);
    }
}
