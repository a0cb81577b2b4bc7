//! Round trips of the OMEMO XML models on every example of XEP-0384 (0.9.1) that carries an OMEMO
//! element, and on legacy (`eu.siacs.conversations.axolotl`) elements as python-omemo's oldmemo writes them.
#![allow(clippy::unwrap_used)] // test code: a panic is a test failure

use minidom::Element;
use xmpp_e2ee::omemo::xml::{DeviceList, Encrypted};
use xmpp_e2ee::omemo::{Bundle, DeviceKeys, Profile, NS_OMEMO2};
use xmpp_social::error::ParseError;

/// XEP-0384 0.9.1, Example 1: Devicelist update received by subscribed clients
const EXAMPLE_1: &str = r#"<message from='juliet@capulet.lit'
         to='romeo@montague.lit'
         type='headline'
         id='update_01'>
  <event xmlns='http://jabber.org/protocol/pubsub#event'>
    <items node='urn:xmpp:omemo:2:devices'>
      <item id='current'>
        <devices xmlns='urn:xmpp:omemo:2'>
          <device id='12345' />
          <device id='4223' label='Gajim on Ubuntu Linux' labelsig='b64/encoded/data' />
        </devices>
      </item>
    </items>
  </event>
</message>"#;

/// XEP-0384 0.9.1, Example 2: Adding the own device id to the list
const EXAMPLE_2: &str = r#"<iq from='juliet@capulet.lit' type='set' id='announce1'>
  <pubsub xmlns='http://jabber.org/protocol/pubsub'>
    <publish node='urn:xmpp:omemo:2:devices'>
      <item id='current'>
        <devices xmlns='urn:xmpp:omemo:2'>
          <device id='12345' label='Dino on Lenovo Thinkpad T495' labelsig='b64/encoded/data' />
          <device id='4223' />
          <device id='31415' label='Conversations on Pixel 3' labelsig='b64/encoded/data' />
        </devices>
      </item>
    </publish>
    <publish-options>
      <x xmlns='jabber:x:data' type='submit'>
        <field var='FORM_TYPE' type='hidden'>
          <value>http://jabber.org/protocol/pubsub#publish-options</value>
        </field>
        <field var='pubsub#access_model'>
          <value>open</value>
        </field>
      </x>
    </publish-options>
  </pubsub>
</iq>"#;

/// XEP-0384 0.9.1, Example 3: Publishing bundle information
const EXAMPLE_3: &str = r#"<iq from='juliet@capulet.lit' type='set' id='annouce2'>
  <pubsub xmlns='http://jabber.org/protocol/pubsub'>
    <publish node='urn:xmpp:omemo:2:bundles'>
      <item id='31415'>
        <bundle xmlns='urn:xmpp:omemo:2'>
          <spk id='1'>b64/encoded/data</spk>
          <spks>b64/encoded/data</spks>
          <ik>b64/encoded/data</ik>
          <prekeys>
            <pk id='1'>b64/encoded/data</pk>
            <pk id='2'>b64/encoded/data</pk>
            <!-- … -->
            <pk id='100'>b64/encoded/data</pk>
          </prekeys>
        </bundle>
      </item>
    </publish>
    <publish-options>
      <x xmlns='jabber:x:data' type='submit'>
        <field var='FORM_TYPE' type='hidden'>
          <value>http://jabber.org/protocol/pubsub#publish-options</value>
        </field>
        <field var='pubsub#max_items'>
          <value>max</value>
        </field>
      </x>
    </publish-options>
  </pubsub>
</iq>"#;

/// XEP-0384 0.9.1, Example 4: Publishing bundle information with an open access model
const EXAMPLE_4: &str = r#"<iq from='juliet@capulet.lit' type='set' id='annouce2'>
  <pubsub xmlns='http://jabber.org/protocol/pubsub'>
    <publish node='urn:xmpp:omemo:2:bundles'>
      <item id='31415'>
        <bundle xmlns='urn:xmpp:omemo:2'>
          <!-- … -->
        </bundle>
      </item>
    </publish>
    <publish-options>
      <x xmlns='jabber:x:data' type='submit'>
        <field var='FORM_TYPE' type='hidden'>
          <value>http://jabber.org/protocol/pubsub#publish-options</value>
        </field>
        <field var='pubsub#max_items'>
          <value>max</value>
        </field>
        <field var='pubsub#access_model'>
          <value>open</value>
        </field>
      </x>
    </publish-options>
  </pubsub>
</iq>"#;

/// XEP-0384 0.9.1, Example 7: Sending a message
const EXAMPLE_7: &str = r#"<message to='juliet@capulet.lit' from='romeo@montague.lit' id='send1'>
  <encrypted xmlns='urn:xmpp:omemo:2'>
    <header sid='27183'>
      <keys jid='juliet@capulet.lit'>
        <key rid='31415'>b64/encoded/data</key>
      </keys>
      <keys jid='romeo@montague.lit'>
        <key rid='1337'>b64/encoded/data</key>
        <key kex='true' rid='12321'>b64/encoded/data</key>
        <!-- ... -->
      </keys>
    </header>
    <payload>
      base64/encoded/message/key/encrypted/envelope/element
    </payload>
  </encrypted>
  <store xmlns='urn:xmpp:hints'/>
</message>"#;

/// XEP-0384 0.9.1, Example 11: Juliet sends a message to a group chat with Romeo and Mercutio
const EXAMPLE_11: &str = r#"<message
    from='juliet@capulet.lit/balcony'
    to='secret-room@conference.capulet.lit'
    type='groupchat'>
  <encrypted xmlns='urn:xmpp:omemo:2'>
    <header sid='27183'>
      <keys jid='juliet@capulet.lit'>
        <key rid='31415'>b64/encoded/data</key>
      </keys>
      <keys jid='romeo@montague.lit'>
        <key kex='true' rid='123'>b64/encoded/data</key>
      </keys>
      <keys jid='mercutio@verona.lit'>
        <key kex='true' rid='456'>b64/encoded/data</key>
      </keys>
    </header>
    <payload>
      base64/encoded/message/key/encrypted/envelope/element
    </payload>
  </encrypted>
  <store xmlns='urn:xmpp:hints'/>
</message>"#;

/// The examples' payload placeholder is not valid base64 (53 characters); it is replaced by valid base64
/// for the round trips (and checked to be refused as it is).
const PAYLOAD_PLACEHOLDER: &str = "base64/encoded/message/key/encrypted/envelope/element";

/// The examples are stanzas without a namespace declaration: they are parsed inside a `jabber:client`
/// wrapper, without their `<!-- ... -->` comments (XMPP forbids comments; minidom refuses them).
fn wrap(xml: &str) -> Element {
    let mut text = xml.to_owned();
    while let Some(start) = text.find("<!--") {
        let end = text[start..].find("-->").map(|e| start + e + 3).unwrap();
        text.replace_range(start..end, "");
    }
    format!("<wrapper xmlns='jabber:client'>{text}</wrapper>")
        .parse()
        .unwrap()
}

fn parse(xml: &str) -> Element {
    wrap(&xml.replace(PAYLOAD_PLACEHOLDER, "cGF5bG9hZA=="))
}

fn omemo_descendants<'a>(el: &'a Element, out: &mut Vec<&'a Element>) {
    for c in el.children() {
        if c.ns() == NS_OMEMO2 || c.ns() == "eu.siacs.conversations.axolotl" {
            out.push(c);
        } else {
            omemo_descendants(c, out);
        }
    }
}

/// Parses every OMEMO element of a stanza, serialises it, parses it again; returns the element names.
fn round_trip_all(xml: &str) -> Vec<String> {
    let root = parse(xml);
    let mut found = Vec::new();
    omemo_descendants(&root, &mut found);
    let mut names = Vec::new();
    for el in found {
        match el.name() {
            "devices" | "list" => {
                let m = DeviceList::try_from(el).unwrap();
                assert_eq!(DeviceList::try_from(&Element::from(&m)).unwrap(), m);
            }
            "bundle" => {
                let m = Bundle::try_from(el).unwrap();
                assert_eq!(Bundle::try_from(&Element::from(&m)).unwrap(), m);
            }
            "encrypted" => {
                let m = Encrypted::try_from(el).unwrap();
                assert_eq!(Encrypted::try_from(&Element::from(&m)).unwrap(), m);
            }
            other => panic!("unexpected OMEMO element {other}"),
        }
        names.push(el.name().to_owned());
    }
    names
}

#[test]
fn every_spec_example_round_trips() {
    for (xml, expected) in [
        (EXAMPLE_1, "devices"),
        (EXAMPLE_2, "devices"),
        (EXAMPLE_3, "bundle"),
        (EXAMPLE_7, "encrypted"),
        (EXAMPLE_11, "encrypted"),
    ] {
        assert_eq!(round_trip_all(xml), vec![expected.to_owned()]);
    }
    // Example 4 elides the bundle's content (`<!-- … -->`): an empty bundle is a typed error.
    let root = parse(EXAMPLE_4);
    let mut found = Vec::new();
    omemo_descendants(&root, &mut found);
    assert_eq!(
        Bundle::try_from(found[0]),
        Err(ParseError::MissingChild {
            element: "bundle",
            child: "spk"
        })
    );
}

#[test]
fn spec_example_values() {
    let root = parse(EXAMPLE_1);
    let mut found = Vec::new();
    omemo_descendants(&root, &mut found);
    let list = DeviceList::try_from(found[0]).unwrap();
    assert_eq!(list.profile, Profile::Omemo2);
    assert_eq!(list.devices.len(), 2);
    assert_eq!(list.devices[0].id, 12345);
    assert_eq!(
        list.devices[1].label.as_deref(),
        Some("Gajim on Ubuntu Linux")
    );
    assert!(list.devices[1].label_signature.is_some());

    let root = parse(EXAMPLE_3);
    let mut found = Vec::new();
    omemo_descendants(&root, &mut found);
    let bundle = Bundle::try_from(found[0]).unwrap();
    assert_eq!(bundle.signed_prekey_id, 1);
    assert_eq!(
        bundle.prekeys.iter().map(|p| p.id).collect::<Vec<_>>(),
        [1, 2, 100]
    );

    let root = parse(EXAMPLE_7);
    let mut found = Vec::new();
    omemo_descendants(&root, &mut found);
    let m = Encrypted::try_from(found[0]).unwrap();
    assert_eq!(m.sid, 27183);
    assert_eq!(m.keys.len(), 3);
    assert_eq!(m.keys[2].jid.as_deref(), Some("romeo@montague.lit"));
    assert!(m.keys[2].key_exchange && !m.keys[1].key_exchange);
    assert_eq!(m.keys_for(Some("juliet@capulet.lit"), 31415).count(), 1);
    assert_eq!(m.payload.as_deref(), Some(&b"payload"[..]));
    // The placeholder itself is not base64: a typed error.
    let raw = wrap(EXAMPLE_7);
    let mut found = Vec::new();
    omemo_descendants(&raw, &mut found);
    assert!(matches!(
        Encrypted::try_from(found[0]),
        Err(ParseError::InvalidValue { .. })
    ));
}

const LEGACY_LIST: &str = r#"<list xmlns='eu.siacs.conversations.axolotl'><device id='12345'/><device id='4223'/></list>"#;
const LEGACY_BUNDLE: &str = r#"<bundle xmlns='eu.siacs.conversations.axolotl'>
  <signedPreKeyPublic signedPreKeyId='1'>BUyUg/sl6FwZ9D8JlIPocXqfkFq9NcbuCaEDvwnvLihX</signedPreKeyPublic>
  <signedPreKeySignature>Za8zfSFL4jY5j2fqYy4E9mV9RkPhdK2JnybmAsDbd+owPjprSBAwYHTSQrma/WF4bBhE47DQRpNTZgNn9YZOhA==</signedPreKeySignature>
  <identityKey>BbcgoY/LkXt4gqHR/+8lxtLuF838IQ1J5UXAvvJ76s4y</identityKey>
  <prekeys><preKeyPublic preKeyId='1'>BW11uvnTRj1qAXIy9pJdcLB65FL4apkYpX4rOwn3Kcxx</preKeyPublic></prekeys>
</bundle>"#;
const LEGACY_MESSAGE: &str = r#"<message to='juliet@capulet.lit' from='romeo@montague.lit' id='send1'>
  <encrypted xmlns='eu.siacs.conversations.axolotl'>
    <header sid='27183'>
      <key rid='31415'>AAAA</key>
      <key prekey='true' rid='12321'>AQID</key>
      <iv>AAECAwQFBgcICQoL</iv>
    </header>
    <payload>cGF5bG9hZA==</payload>
  </encrypted>
  <store xmlns='urn:xmpp:hints'/>
</message>"#;

#[test]
fn legacy_elements_round_trip() {
    assert_eq!(round_trip_all(LEGACY_LIST), ["list"]);
    assert_eq!(round_trip_all(LEGACY_BUNDLE), ["bundle"]);
    assert_eq!(round_trip_all(LEGACY_MESSAGE), ["encrypted"]);
    let b = Bundle::try_from(&LEGACY_BUNDLE.parse::<Element>().unwrap()).unwrap();
    assert_eq!(b.profile, Profile::Legacy);
    assert_eq!(b.identity_key.len(), 33);
    assert_eq!(b.signed_prekey_signature.len(), 64);
    let root = wrap(LEGACY_MESSAGE);
    let mut found = Vec::new();
    omemo_descendants(&root, &mut found);
    let m = Encrypted::try_from(found[0]).unwrap();
    assert_eq!(m.iv.as_deref().map(<[u8]>::len), Some(12));
    assert!(m.keys[1].key_exchange && m.keys[1].jid.is_none());
    assert_eq!(m.keys_for(Some("anyone@x"), 12321).count(), 1);
}

#[test]
fn our_bundles_survive_the_xml_and_still_verify() {
    let keys = DeviceKeys::generate(3);
    for p in [Profile::Omemo2, Profile::Legacy] {
        let b = keys.bundle(p);
        let el = Element::from(&b);
        assert_eq!(el.ns(), p.namespace());
        let back = Bundle::try_from(&String::from(&el).parse::<Element>().unwrap()).unwrap();
        assert_eq!(back, b);
        assert_eq!(back.verify(), Ok(()));
    }
}

#[test]
fn malformed_elements_are_typed_errors() {
    let bad = [
        "<encrypted xmlns='urn:xmpp:omemo:2'/>",
        "<encrypted xmlns='urn:xmpp:omemo:2'><header/></encrypted>",
        "<encrypted xmlns='urn:xmpp:omemo:2'><header sid='x'/></encrypted>",
        "<encrypted xmlns='urn:xmpp:omemo:2'><header sid='1'><keys><key rid='1'>AA==</key></keys></header></encrypted>",
        "<encrypted xmlns='urn:xmpp:omemo:2'><header sid='1'><keys jid='a@b'><key rid='1' kex='maybe'>AA==</key></keys></header></encrypted>",
        "<encrypted xmlns='urn:xmpp:omemo:2'><header sid='1'><keys jid='a@b'><key rid='99999999999'>AA==</key></keys></header></encrypted>",
        "<encrypted xmlns='urn:xmpp:omemo:2'><header sid='1'><keys jid='a@b'><key rid='1'>!!</key></keys></header></encrypted>",
        "<encrypted xmlns='eu.siacs.conversations.axolotl'><header sid='1'><key rid='1'>AA==</key></header></encrypted>",
        "<encrypted xmlns='urn:xmpp:other'><header sid='1'/></encrypted>",
        "<bundle xmlns='urn:xmpp:omemo:2'><spk id='1'>AA==</spk><ik>AA==</ik><prekeys/></bundle>",
        "<bundle xmlns='urn:xmpp:omemo:2'><spk>AA==</spk><spks>AA==</spks><ik>AA==</ik><prekeys/></bundle>",
        "<devices xmlns='urn:xmpp:omemo:2'><device/></devices>",
        "<devices xmlns='urn:xmpp:omemo:2'><device id='-1'/></devices>",
    ];
    for xml in bad {
        let el: Element = xml.parse().unwrap();
        let r = match el.name() {
            "encrypted" => Encrypted::try_from(&el).map(|_| ()),
            "bundle" => Bundle::try_from(&el).map(|_| ()),
            _ => DeviceList::try_from(&el).map(|_| ()),
        };
        assert!(r.is_err(), "{xml}");
    }
    let many: String = (0..1001).map(|i| format!("<device id='{i}'/>")).collect();
    let el: Element = format!("<devices xmlns='urn:xmpp:omemo:2'>{many}</devices>")
        .parse()
        .unwrap();
    assert!(matches!(
        DeviceList::try_from(&el),
        Err(ParseError::TooLarge { .. })
    ));
}
