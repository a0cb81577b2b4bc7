//! XEP-0471 (Calendar Events) and XEP-0346 (Form Discovery and Publishing): round trips of every example
//! of both XEPs (embedded verbatim below; where an example is not well-formed or contradicts its own text,
//! the test says so and applies the smallest fix), malformed payloads, and the two stories on Prosody and
//! ejabberd:
//! - Alice creates an event, invites Bob and Carol; Bob answers yes, Carol maybe; the summary follows the
//!   XEP's rules; an uninvited account can neither read nor answer until invited.
//! - Alice creates a grocery list, Bob adds and ticks items, both see the same list; an account gets
//!   exactly what the list is shared with it for.

#[macro_use]
mod common;

use std::collections::BTreeSet;

use common::{jid, login, register, start};
use jid::BareJid;
use minidom::{Element, Node};
use xmpp_parsers::stanza_error::DefinedCondition;
use xmpp_social::attachments::{summary_node_name, NS_ATTACHMENTS};
use xmpp_social::client::XmppClient;
use xmpp_social::events::{
    events_node, AttendeesSummary, Attending, CreateEventOptions, DescriptionBody, Event,
    EventNamespace, EventStatus, EventsExt, InviteOptions, Invitee, RsvpAnswer, RsvpForm,
    Wheelchair, FORM_RSVP, NS_CALENDAR_EVENTS, PARTICIPANTS_FIELD,
};
use xmpp_social::forms::{DataForm, FormType};
use xmpp_social::lists::{
    is_fdp_service, lists_from_disco_items, ItemValues, ListAccess, ListEntry, ListOptions,
    ListRef, ListTemplate, ListsExt, LIBERVIA_LIST_NS,
};
use xmpp_social::microblog::{ItemRef, NodeRef, XmppUri};
use xmpp_social::pubsub::{request, AccessModel, DiscoInfo, Item, ItemsQuery};
use xmpp_social::{Error, ParseError};
use xmpp_testkit::ServerKind;

/// xep-0471.xml example "Minimal Event" (verbatim).
const X471_MINIMAL_EVENT: &str = r#"<iq
  type='set'
  from='juliet@capulet.lit/chamber'
  to='juliet@capulet.lit'
  id='event1'>
  <pubsub xmlns='http://jabber.org/protocol/pubsub'>
    <publish node='urn:xmpp:calendar-events:0'>
      <item>
        <event xmlns='urn:xmpp:calendar-events:0'>
          <name>Coffee with the nurse</name>
          <start>2022-09-05T12:00:00Z</start>
          <end>2022-09-05T13:00:00Z</end>
        </event>
      </item>
    </publish>
  </pubsub>
</iq>"#;

/// xep-0471.xml example "Organising an Event" (verbatim).
const X471_ORGANISING_EVENT: &str = r#"<iq
  type='set'
  from='juliet@capulet.lit/chamber'
  to='pubsub.capulet.lit'
  id='event2'>
  <pubsub xmlns='http://jabber.org/protocol/pubsub'>
    <publish node='urn:xmpp:calendar-events:0/balls'>
      <item id='2022_ball'>
        <event xmlns='urn:xmpp:calendar-events:0'>
          <name xml:lang='en'>Capulet's Ball</name>
          <start>2022-12-15T20:00:00Z</start>
          <end>2022-12-16T02:00:00Z</end>
          <head-picture>
            <file-sharing xmlns='urn:xmpp:sfs:0' disposition='inline'>
              <file xmlns='urn:xmpp:file:metadata:0'>
                <media-type>image/jpeg</media-type>
                <name>ball_room.jpg</name>
                <size>120354</size>
                <dimensions>1920x1080</dimensions>
                <hash xmlns='urn:xmpp:hashes:2' algo='sha3-256'>2XarmwTlNxDAMkvymloX3S5+VbylNrJt/l5QyPa+YoU=</hash>
                <hash xmlns='urn:xmpp:hashes:2' algo='id-blake2b256'>2AfMGH8O7UNPTvUVAM9aK13mpCY=</hash>
                <desc>Photo of the ball room.</desc>
                <thumbnail xmlns='urn:xmpp:thumbs:1' uri='cid:sha1+ffd7c8d28e9c5e82afea41f97108c6b4@bob.capulet.lit' media-type='image/png' width='640' height='360'/>
              </file>
              <sources>
                <url-data xmlns='http://jabber.org/protocol/url-data' target='https://download.capulet.lit/123abc-def-456-789/ball_room.jpg' />
                <jinglepub xmlns='urn:xmpp:jinglepub:1' from='download.capulet.lit' id='123abc-def-456-789'>
                  <description xmlns='urn:xmpp:jingle:apps:file-transfer:5' />
                </jinglepub>
              </sources>
            </file-sharing>
          </head-picture>
          <description type='text' xml:lang='en'>
            The Capulet familly is organizing its great annual ball! Come and enjoy the event of the year…
          </description>
          <description type='xhtml' xml:lang='en'>
            <div xmlns='http://www.w3.org/1999/xhtml'>
                The Capulet familly is organizing its great <strong>annual ball!</strong> Come and enjoy the event of the year…
            </div>
          </description>
          <category term='ball' wd='Q478515' xml:lang=en />
          <category term='dance' wd='Q11639' xml:lang=en />
          <category term='music' wd='Q638' xml:lang=en />
          <location>
            <geoloc xmlns='http://jabber.org/protocol/geoloc' xml:lang='en'>
              <locality>Capulet's House</locality>
              <country>Italy</country>
              <lat>45.4181</lat>,
              <lon>10.9637</lon>
              <text>Code for entrance gate: 0123C</text>
            </geoloc>
          </location>
          <rsvp xml:lang='en'>
            <x xmlns="jabber:x:data" type="form">
              <field var="FORM_TYPE" type="hidden">
                <value>urn:xmpp:calendar-events:rsvp:0</value>
              </field>
              <field type='list-single' label='Attending' var='attending'>
                <value>maybe</value>
                <option label='maybe'><value>maybe</value></option>
                <option label='yes'><value>yes</value></option>
                <option label='no'><value>no</value></option>
                <required/>
              </field>
            </x>
          </rsvp>
          <invitees jid='pubsub.capulet.lit' node='urn:xmpp:calendar-events:invitees:0/2022_ball' />
          <comments jid='pubsub.capulet.lit' node='urn:xmpp:microblog:0:comments/2022_ball' />
          <blog jid='pubsub.capulet.lit' node='2022_ball_blog' />
          <schedule jid='pubsub.capulet.lit' node='urn:xmpp:calendar-events:0/2022_ball_schedule' />
          <attachments>
            <file-sharing xmlns='urn:xmpp:sfs:0' disposition='inline'>
              <file xmlns='urn:xmpp:file:metadata:0'>
                <media-type>application/pdf</media-type>
                <name>dinner_menu.pdf</name>
                <size>50123</size>
                <hash xmlns='urn:xmpp:hashes:2' algo='sha3-256'>d7b7d858663d110761ac4c9b7dbc4d8408445b16be0b9cedb908a2c7b454335a</hash>
                <desc>Menu for the ball dinner.</desc>
              </file>
              <sources>
                <url-data xmlns='http://jabber.org/protocol/url-data' target='https://download.capulet.lit/789abc-def-123-456/dinner_menu.pdf' />
                <jinglepub xmlns='urn:xmpp:jinglepub:1' from='download.capulet.lit' id='789abc-def-123-456'>
                  <description xmlns='urn:xmpp:jingle:apps:file-transfer:5' />
                </jinglepub>
              </sources>
            </file-sharing>
          </attachments>
          <extra>
            <x xmlns="jabber:x:data" type="result">
              <field var="FORM_TYPE" type="hidden">
                <value>urn:xmpp:calendar-events:extra:0</value>
              </field>
              <field var='website'>
                <value>https://ball2022.capulet.lit</value>
              </field>
              <field var='accessibility:wheelchair'>
                <value>full</value>
              </field>
            </x>
          </extra>
        </event>
      </item>
    </publish>
  </pubsub>
</iq>"#;

/// xep-0471.xml example "Online Location" (verbatim).
const X471_ONLINE_LOCATION: &str = r#"<iq
  type='set'
  from='juliet@capulet.lit/chamber'
  to='pubsub.capulet.lit'
  id='event3'>
  <pubsub xmlns='http://jabber.org/protocol/pubsub'>
    <publish node='urn:xmpp:calendar-events:0/ball_organisation'>
      <item>
        <event xmlns='urn:xmpp:calendar-events:0'>
          <!-- … -->

          <location>
            <online>
              <name xml:lang="en">Ball organisation</name>
              <software name='Jitsi Meet' wd='Q87849488' url='https://meet.jit.si/' need_install='false' />
              <url-data xmlns='http://jabber.org/protocol/url-data' target='https://jitsi.capulet.lit/ball_2022_organisation' />
              <instructions xml:lang='en'>
                  Just click on the link to access the room. We'll be discussion about organisation of the Capulet ball.
              </instructions>
            </online>
            <online>
              <x xmlns='jabber:x:conference' jid='ball_talks@muc.capulet.lit' />
              <instructions xml:lang='en'>
                  Join this room for any king of discussions which need to be written, and to share files.
              </instructions>
            </online>
          </location>

          <!-- … -->
        </event>
      </item>
    </publish>
  </pubsub>
</iq>"#;

/// xep-0471.xml example "RSVP Form" (verbatim).
const X471_RSVP_FORM: &str = r#"<iq
  type='set'
  from='juliet@capulet.lit/chamber'
  to='pubsub.capulet.lit'
  id='event4'>
  <pubsub xmlns='http://jabber.org/protocol/pubsub'>
    <publish node='urn:xmpp:calendar-events:0/picnics'>
      <item id='picnic_ab123'>
        <event xmlns='urn:xmpp:calendar-events:0'>
          <!-- … -->

          <rsvp>
            <x xmlns="jabber:x:data" type="form">
              <field var="FORM_TYPE" type="hidden">
                <value>urn:xmpp:calendar-events:rsvp:0</value>
              </field>
              <field type='list-single' label='Attending' var='attending'>
                <value>maybe</value>
                <option label='maybe'><value>maybe</value></option>
                <option label='yes'><value>yes</value></option>
                <option label='no'><value>no</value></option>
                <required/>
              </field>
              <field label='Number of persons comming (including you)' var='participants_number'>
                <value>1</value>
              </field>
              <field
                label='Do you have any allergy or food restriction?'
                var='{https://example.org/some_software}restrictions'
                type='text-multi' />
            </x>
          </rsvp>

          <!-- … -->
        </event>
      </item>
    </publish>
  </pubsub>
</iq>"#;

/// xep-0471.xml example "Romeo Submit his RSVP Answer" (verbatim).
const X471_RSVP_ANSWER: &str = r#"<iq from='romeo@montague.lit/123'
  id='events_5'
  to='pubsub.capulet.lit'
  type='set'>
  <pubsub xmlns='http://jabber.org/protocol/pubsub'>
    <publish node='xmpp:pubsub.capulet.lit?;node=urn%3Axmpp%3Aevents%3A0%2Fpicnics;item=picnic_ab123'>
      <item id='romeo@montague.lit'>
        <attachments>
          <rsvp xmlns='urn:xmpp:calendar-events:0'>
            <x xmlns="jabber:x:data" type="submit">
              <field var='FORM_TYPE'>
                <value>>urn:xmpp:calendar-events:rsvp:0</value>
              </field>
              <field var='attending'>
                <value>yes</value>
              </field>
              <field var='{https://example.org/some_software}restrictions'>
                <value>no</value>
              </field>
            </x>
          </rsvp>
        </attachments>
      </item>
    </publish>
  </pubsub>
</iq>"#;

/// xep-0471.xml example "Juliet Check Current Summary of RSVP" (verbatim).
const X471_RSVP_SUMMARY: &str = r#"<iq from='pubsub.capulet.lit'
    id='events_6'
    to='juliet@capulet.lit/chamber'
    type='result'>
    <pubsub xmlns='http://jabber.org/protocol/pubsub'>
      <items node='urn:xmpp:pubsub-attachments:summary:1/urn:xmpp:calendar-events:0/picnics'>
        <item id='picnic_ab123'>
          <summary xmlns='urn:xmpp:pubsub-attachments:summary:1'>
            <!-- … -->

            <attendees xmlns='urn:xmpp:calendar-events:0' confirmed='5' max='7' />

            <!-- … -->
          </summary>
        </item>
      </items>
    </pubsub>
  </iq>"#;

/// xep-0471.xml example "Romeo Submit a Private RSVP Answer" (verbatim).
const X471_PRIVATE_RSVP: &str = r#"<message from='romeo@montague.lit/123' to='juliet@.capulet.lit' >
    <rsvp xmlns='urn:xmpp:calendar-events:0'>
      <x xmlns="jabber:x:data" type="submit">
        <field var='FORM_TYPE'>
          <value>>urn:xmpp:calendar-events:rsvp:0</value>
        </field>
        <field var='attending'>
          <value>yes</value>
        </field>
        <field var='{https://example.org/some_software}restrictions'>
          <value>no</value>
        </field>
      </x>
    </rsvp>
    <store xmlns="urn:xmpp:hints"/>
  </message>"#;

/// xep-0471.xml example "Pubsub Service Returns the List of Invitees to Juliet" (verbatim).
const X471_INVITEES: &str = r#"<iq type='result'
  from='pubsub.capulet.lit'
  to='juliet@capulet.lit/chamber'
  id='invitees_123'>
  <pubsub xmlns='http://jabber.org/protocol/pubsub'>
    <items node='urn:xmpp:calendar-events:invitees:0/2022_ball'>
      <item id='abcdef'>
        <invitee jid='nurse@capulet.lit' name='Nurse' />
      </item>
      <item id='123456'>
        <invitee jid='tybalt@capulet.lit' name='Tybalt' />
      </item>
      <!-- … -->
    </items
    </pubsub>
  </iq>"#;

/// xep-0471.xml example "Romeo Link Capulet's Ball in His Personal Agenda" (verbatim).
const X471_EXTERNAL_LINK: &str = r#"<iq
  type='set'
  from='romeo@montague.lit/123'
  to='romeo@montague.lit'
  id='event_link_123'>
  <pubsub xmlns='http://jabber.org/protocol/pubsub'>
    <publish node='urn:xmpp:calendar-events:0'>
      <item>
        <event xmlns='urn:xmpp:calendar-events:0'>
          <name xml:lang='en'>Capulet's Ball</name>
          <start>2022-12-15T20:00:00Z</start>
          <end>2022-12-16T02:00:00Z</end>
          <external jid='pubsub.capulet.lit' node='urn:xmpp:calendar-events:0/balls' item='2022_ball' />
        </event>
      </item>
    </publish>
  </pubsub>
</iq>"#;

/// xep-0471.xml example "Service Discovery information request" (verbatim).
const X471_DISCO_REQUEST_CLIENT: &str = r#"<iq type='get'
    from='juliet@example.org/balcony'
    to='romeo@example.org/orchard'
    id='disco1'>
  <query xmlns='http://jabber.org/protocol/disco#info'/>
</iq>"#;

/// xep-0471.xml example "Service Discovery information response" (verbatim).
const X471_DISCO_RESPONSE_CLIENT: &str = r#"<iq type='result'
    from='romeo@example.org/orchard'
    to='juliet@example.org/balcony'
    id='disco1'>
  <query xmlns='http://jabber.org/protocol/disco#info'>
    ...
    <feature var='urn:xmpp:calendar-events:0'/>
    ...
  </query>
</iq>"#;

/// xep-0471.xml example "Service Discovery information request" (verbatim).
const X471_DISCO_REQUEST_SERVICE: &str = r#"<iq type='get'
    from='juliet@example.org/balcony'
    to='pubsub.capulet.lit'
    id='disco2'>
  <query xmlns='http://jabber.org/protocol/disco#info'/>
</iq>"#;

/// xep-0471.xml example "Service Discovery information response" (verbatim).
const X471_DISCO_RESPONSE_SERVICE: &str = r#"<iq type='result'
    from='pubsub.capulet.lit'
    to='juliet@example.org/balcony'
    id='disco2'>
  <query xmlns='http://jabber.org/protocol/disco#info'>
    ...
    <feature var='urn:xmpp:calendar-events:0'/>
    ...
  </query>
</iq>"#;

/// xep-0346.xml example "User discovers available nodes" (verbatim).
const X346_DISCOVER_NODES: &str = r#"<iq id="34385937-3740-411d-a360-374e9ba73202" to="pubsub.stan.isode.net" type="get">
  <query xmlns="http://jabber.org/protocol/disco#items"/>
</iq>

<iq from='pubsub.stan.isode.net' to='sysop@stan.isode.net/4d67a58b4d16cc1d' type='result' id='34385937-3740-411d-a360-374e9ba73202'>
  <query xmlns='http://jabber.org/protocol/disco#items'>
    <item jid='pubsub.stan.isode.net' node='fdp/submitted/stan.isode.net/accidentreport' name='AccidentReport'/>
    <item jid='pubsub.stan.isode.net' node='fdp/template/stan.isode.net/accidentreport' name='AccidentReport'/>
  </query>
</iq>"#;

/// xep-0346.xml example "User fetches a template" (verbatim).
const X346_FETCH_TEMPLATE: &str = r#"<iq id="fb73efb3-356e-43ce-98a3-f76d86132745" to="pubsub.stan.isode.net" type="get">
  <pubsub xmlns="http://jabber.org/protocol/pubsub">
    <items max_items="1" node="fdp/template/stan.isode.net/accidentreport" xmlns="http://jabber.org/protocol/pubsub"/>
  </pubsub>
</iq>

<iq from='pubsub.stan.isode.net' to='sysop@stan.isode.net/4d67a58b4d16cc1d' type='result' id='fb73efb3-356e-43ce-98a3-f76d86132745'>
  <pubsub xmlns='http://jabber.org/protocol/pubsub'>
    <items node='fdp/template/stan.isode.net/accidentreport'>
      <item id='version01'>
        <x xmlns='jabber:x:data' type='form'>
          <instructions>Please fill in all fields to complete this accident report.</instructions>
          <title>Accident report form.</title>
          <field type='list-single' label='Place of fall:' var='Place'>
            <option label="Kitchen">
              <value>Kitchen</value>
            </option>
            <option label="Conference Room">
              <value>Conference Room</value>
            </option>
            <option label="Engineering">
              <value>Engineering</value>
            </option>
          </field>
          <field type='text-single' label='Type of injury:' var='Type'>
          </field>
          <field type='boolean' label='Ambulance needed?' var='Ambulance'>
          </field>
        </x>
      </item>
    </items>
  </pubsub>
</iq>"#;

/// xep-0346.xml example "User submits the completed form" (verbatim).
const X346_SUBMIT_FORM: &str = r#"<iq id="fc2e69de-4626-47d3-b04b-1cd6b4049b3f" to="pubsub.stan.isode.net" type="set">
  <pubsub xmlns="http://jabber.org/protocol/pubsub">
    <publish node="fdp/submitted/stan.isode.net/accidentreport" xmlns="http://jabber.org/protocol/pubsub">
      <item id="" xmlns="http://jabber.org/protocol/pubsub">
        <x type="submit" xmlns="jabber:x:data">
          <title>Accident report form.</title>
          <field label="Place of fall:" type="list-single" var="Place">
            <value>Kitchen</value>
          </field>
          <field label="Type of injury:" type="text-single" var="Type">
            <value>Ankle</value>
          </field>
          <field label="Ambulance needed?" type="boolean" var="Ambulance">
            <value>1</value>
          </field>
        </x>
      </item>
    </publish>
  </pubsub>
</iq>"#;

/// xep-0346.xml example "User subscribes to a completed form node" (verbatim).
const X346_SUBSCRIBE: &str = r#"<iq id="0f66fbcf-6148-40ed-a084-a3a5e2a71329" to="pubsub.stan.isode.net" type="set">
  <pubsub xmlns="http://jabber.org/protocol/pubsub">
    <subscribe jid="sysop@stan.isode.net/763be9c30f8ee893" node="fdp/submitted/stan.isode.net/accidentreport" xmlns="http://jabber.org/protocol/pubsub"/>
  </pubsub>
</iq>"#;

/// xep-0346.xml example "Administrator publishes a form template" (verbatim).
const X346_PUBLISH_TEMPLATE: &str = r#"<iq id="309d632d-fa68-4004-8611-d11cc5074d66" to="pubsub.stan.isode.net" type="set">
  <pubsub xmlns="http://jabber.org/protocol/pubsub">
    <publish node="fdp/template/stan.isode.net/accidentreport">
      <item id="version01">
        <x xmlns="jabber:x:data" type="form">
          <instructions>Please fill in all fields to complete this accident report.</instructions>
          <title>Accident report form.</title>
          <field type="list-single" label="Place of fall:" var="Place">
            <option label="Kitchen">
              <value>Kitchen</value>
            </option>
            <option label="Conference Room">
              <value>Conference Room</value>
            </option>
            <option label="Engineering">
              <value>Engineering</value>
            </option>
          </field>
          <field type="text-single" label="Type of injury:" var="Type">
        </field>
          <field type="boolean" label="Ambulance needed?" var="Ambulance">
        </field>
      </x>
    </item>
  </publish>
</pubsub>
</iq>"#;

/// xep-0346.xml example "Entity Queries Pubsub Service Regarding Supported Features" (verbatim).
const X346_FDP_DISCO_REQUEST: &str = r#"<iq type='get'
    from='sysop@stan.isode.net/763be9c30f8ee893'
    to='pubsub.stan.isode.net'
    id='feature1'>
  <query xmlns='http://jabber.org/protocol/disco#info'/>
</iq>"#;

/// xep-0346.xml example "Pubsub Service Includes FDP in its identities" (verbatim).
const X346_FDP_DISCO_RESPONSE: &str = r#"<iq type='result'
    from='pubsub.stan.isode.net'
    to='sysop@stan.isode.net/763be9c30f8ee893'
    id='feature1'>
  <query xmlns='http://jabber.org/protocol/disco#info'>
    <identity category='pubsub' type='service'/>
    <identity category='pubsub' type='urn:xmpp:fdp:0'/>
    <feature var='http://jabber.org/protocol/pubsub'/>
  </query>
</iq>"#;

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// Parses one stanza of an example. The examples leave the stanza namespace implicit: `jabber:client`
/// is declared on the root when it declares none. XML comments (`<!-- … -->`, the examples' ellipses)
/// are removed: XMPP forbids them and the parser refuses them.
fn stanza(xml: &str) -> Element {
    let mut xml = xml.trim().to_owned();
    while let Some(start) = xml.find("<!--") {
        let end = xml[start..].find("-->").expect("closed comment") + start + 3;
        xml.replace_range(start..end, "");
    }
    let xml = xml.as_str();
    let start_tag_end = xml.find('>').expect("a start tag");
    let fixed = if xml[..start_tag_end].contains("xmlns=") {
        xml.to_owned()
    } else {
        let name_end = xml[1..]
            .find(|c: char| c.is_whitespace() || c == '>' || c == '/')
            .map(|i| i + 1)
            .expect("a root name");
        format!(
            "{} xmlns='jabber:client'{}",
            &xml[..name_end],
            &xml[name_end..]
        )
    };
    xmpp_social::xml::parse_bounded(&fixed, 1 << 20).unwrap_or_else(|e| panic!("{e}: {fixed}"))
}

/// The stanzas of an example holding several (separated by a blank line).
fn stanzas(xml: &str) -> Vec<Element> {
    xml.split("\n\n")
        .map(str::trim)
        .filter(|s| s.starts_with('<'))
        .map(stanza)
        .collect()
}

/// A copy without whitespace-only text nodes, for structural comparisons.
fn strip_ws(el: &Element) -> Element {
    let mut out = Element::bare(el.name(), el.ns());
    for ((ns, name), value) in el.attrs().iter() {
        out.set_attr(ns.clone(), name.clone(), value.clone());
    }
    for node in el.nodes() {
        match node {
            Node::Element(c) => {
                out.append_child(strip_ws(c));
            }
            Node::Text(t) if t.trim().is_empty() => {}
            Node::Text(t) => out.append_text_node(t.clone()),
        }
    }
    out
}

const NS_PUBSUB: &str = "http://jabber.org/protocol/pubsub";

fn child<'a>(el: &'a Element, name: &str, ns: &str) -> &'a Element {
    el.get_child(name, ns)
        .unwrap_or_else(|| panic!("<{name} xmlns='{ns}'/> in {}", String::from(el)))
}

/// The `(node, item id, payload)` of a `<pubsub><publish>` IQ.
fn published(iq: &Element) -> (String, Option<String>, Element) {
    let publish = child(child(iq, "pubsub", NS_PUBSUB), "publish", NS_PUBSUB);
    let item = child(publish, "item", NS_PUBSUB);
    let payload = item.children().next().expect("a payload").clone();
    (
        publish.attr("node").expect("node").to_owned(),
        item.attr("id").map(str::to_owned),
        payload,
    )
}

/// Parses an event, serialises it, reparses the output (as an element and as text) and checks that
/// nothing changed.
fn round_trip_event(el: &Element) -> Event {
    let ev = Event::try_from(el).unwrap_or_else(|e| panic!("{e}"));
    let out = Element::from(&ev);
    assert_eq!(Event::try_from(&out).expect("reparse"), ev);
    let text = String::from(&out);
    assert_eq!(text.parse::<Event>().expect("reparse text"), ev);
    serde_json::to_value(&ev).expect("json");
    ev
}

fn date(s: &str) -> chrono::DateTime<chrono::FixedOffset> {
    chrono::DateTime::parse_from_rfc3339(s).expect("date")
}

/// The mandatory children put where a fragment example elides them with `<!-- … -->`.
const MANDATORY: &str =
    "<name>Fragment</name><start>2022-09-05T12:00:00Z</start><end>2022-09-05T13:00:00Z</end>";

fn completed_fragment(xml: &str) -> String {
    xml.replacen("<!-- … -->", MANDATORY, 1)
}

// ---------------------------------------------------------------------------------------------
// XEP-0471 examples
// ---------------------------------------------------------------------------------------------

#[test]
fn x471_minimal_event() {
    let iq = stanza(X471_MINIMAL_EVENT);
    let (node, id, payload) = published(&iq);
    assert_eq!(node, NS_CALENDAR_EVENTS);
    assert_eq!(id, None);
    let ev = round_trip_event(&payload);
    assert_eq!(ev.ns, EventNamespace::Current);
    assert_eq!(ev.name(None), Some("Coffee with the nurse"));
    assert_eq!(ev.start, date("2022-09-05T12:00:00Z"));
    assert_eq!(ev.end, date("2022-09-05T13:00:00Z"));
    // What the SDK would send for it is the example's <pubsub/>, element for element.
    let built = Event::new(
        "Coffee with the nurse",
        date("2022-09-05T12:00:00Z"),
        date("2022-09-05T13:00:00Z"),
    );
    assert_eq!(built, ev);
    assert_eq!(
        strip_ws(&request::publish(
            NS_CALENDAR_EVENTS,
            None,
            Element::from(&built),
            None
        )),
        strip_ws(child(&iq, "pubsub", NS_PUBSUB))
    );
}

#[test]
fn x471_organising_an_event() {
    // Not well-formed as published: `xml:lang=en` (unquoted) on the three <category/> elements.
    assert!(matches!(
        xmpp_social::xml::parse_bounded(X471_ORGANISING_EVENT, 1 << 20),
        Err(ParseError::Xml(_))
    ));
    let fixed = X471_ORGANISING_EVENT.replace("xml:lang=en ", "xml:lang='en' ");
    let iq = stanza(&fixed);
    let (node, id, payload) = published(&iq);
    assert_eq!(node, "urn:xmpp:calendar-events:0/balls");
    assert_eq!(id.as_deref(), Some("2022_ball"));
    let ev = round_trip_event(&payload);

    assert_eq!(ev.names.len(), 1);
    assert_eq!(ev.names[0].lang.as_deref(), Some("en"));
    assert_eq!(ev.name(Some("en")), Some("Capulet's Ball"));
    assert_eq!(ev.start, date("2022-12-15T20:00:00Z"));
    assert_eq!(ev.end, date("2022-12-16T02:00:00Z"));

    let pic = ev.head_picture.as_ref().expect("head picture");
    assert_eq!(pic.name().as_deref(), Some("ball_room.jpg"));
    assert_eq!(pic.media_type().as_deref(), Some("image/jpeg"));
    assert_eq!(pic.size(), Some(120354));
    assert_eq!(pic.desc().as_deref(), Some("Photo of the ball room."));
    assert_eq!(
        pic.urls(),
        ["https://download.capulet.lit/123abc-def-456-789/ball_room.jpg"]
    );

    assert_eq!(ev.descriptions.len(), 2);
    assert!(
        matches!(&ev.descriptions[0].body, DescriptionBody::Text(t) if t.contains("great annual ball!"))
    );
    assert_eq!(ev.descriptions[0].lang.as_deref(), Some("en"));
    match &ev.descriptions[1].body {
        DescriptionBody::Xhtml(x) => assert!(x.plain_text().contains("great annual ball!")),
        other => panic!("expected XHTML, got {other:?}"),
    }

    let cats: Vec<(&str, Option<&str>, Option<&str>)> = ev
        .categories
        .iter()
        .map(|c| (c.term.as_str(), c.wd.as_deref(), c.lang.as_deref()))
        .collect();
    assert_eq!(
        cats,
        [
            ("ball", Some("Q478515"), Some("en")),
            ("dance", Some("Q11639"), Some("en")),
            ("music", Some("Q638"), Some("en"))
        ]
    );

    let loc = ev.main_location().expect("location");
    let geo = loc.geoloc.as_ref().expect("geoloc");
    assert_eq!(loc.geoloc_lang.as_deref(), Some("en"));
    assert_eq!(geo.locality.as_deref(), Some("Capulet's House"));
    assert_eq!(geo.country.as_deref(), Some("Italy"));
    assert_eq!((geo.lat, geo.lon), (Some(45.4181), Some(10.9637)));
    assert_eq!(geo.text.as_deref(), Some("Code for entrance gate: 0123C"));

    assert_eq!(ev.rsvp.len(), 1);
    let rsvp = &ev.rsvp[0];
    assert_eq!(rsvp.lang.as_deref(), Some("en"));
    assert_eq!(rsvp.form.kind, FormType::Form);
    assert_eq!(rsvp.form.form_type(), Some(FORM_RSVP));
    let attending = rsvp.form.field("attending").expect("attending");
    assert!(attending.required);
    assert_eq!(attending.kind.as_deref(), Some("list-single"));
    assert_eq!(attending.options.len(), 3);

    let svc = jid("pubsub.capulet.lit");
    let link = |n: &str| Some(NodeRef::new(svc.clone(), n));
    assert_eq!(
        ev.invitees,
        link("urn:xmpp:calendar-events:invitees:0/2022_ball")
    );
    assert_eq!(ev.comments, link("urn:xmpp:microblog:0:comments/2022_ball"));
    assert_eq!(ev.blog, link("2022_ball_blog"));
    assert_eq!(
        ev.schedule,
        link("urn:xmpp:calendar-events:0/2022_ball_schedule")
    );

    assert_eq!(ev.attachments.len(), 1);
    assert_eq!(ev.attachments[0].name().as_deref(), Some("dinner_menu.pdf"));
    assert_eq!(ev.attachments[0].size(), Some(50123));

    let extra = ev.extra.as_ref().expect("extra");
    assert_eq!(
        extra.website.as_deref(),
        Some("https://ball2022.capulet.lit")
    );
    assert_eq!(extra.wheelchair, Some(Wheelchair::Full));
    assert!(extra.other.is_empty());
    assert!(ev.other.is_empty(), "every child is typed");

    // Nothing dropped or reordered: the same children, in the same order.
    let names = |e: &Element| {
        e.children()
            .map(|c| c.name().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(names(&Element::from(&ev)), names(&payload));
    assert_eq!(names(&payload).len(), 17);
}

#[test]
fn x471_online_location() {
    let iq = stanza(X471_ONLINE_LOCATION);
    let (node, _, payload) = published(&iq);
    assert_eq!(node, "urn:xmpp:calendar-events:0/ball_organisation");
    // A fragment: the mandatory <name/>, <start/> and <end/> are elided, which a parser must refuse.
    assert!(matches!(
        Event::try_from(&payload),
        Err(ParseError::MissingChild {
            element: "event",
            ..
        })
    ));
    let iq = stanza(&completed_fragment(X471_ONLINE_LOCATION));
    let ev = round_trip_event(&published(&iq).2);
    assert_eq!(ev.locations.len(), 1);
    let online = &ev.locations[0].online;
    assert_eq!(online.len(), 2);
    assert_eq!(online[0].names[0].text, "Ball organisation");
    assert_eq!(online[0].names[0].lang.as_deref(), Some("en"));
    let sw = online[0].software.as_ref().expect("software");
    assert_eq!(sw.name, "Jitsi Meet");
    assert_eq!(sw.wd.as_deref(), Some("Q87849488"));
    assert_eq!(sw.url.as_deref(), Some("https://meet.jit.si/"));
    assert_eq!(sw.need_install, Some(false));
    assert_eq!(
        online[0].url.as_deref(),
        Some("https://jitsi.capulet.lit/ball_2022_organisation")
    );
    assert!(online[0].instructions[0]
        .text
        .contains("Just click on the link"));
    assert_eq!(online[1].muc, Some(jid("ball_talks@muc.capulet.lit")));
    assert!(online[1].instructions[0].text.contains("Join this room"));
}

#[test]
fn x471_rsvp_form() {
    let iq = stanza(X471_RSVP_FORM);
    assert!(Event::try_from(&published(&iq).2).is_err(), "fragment");
    let iq = stanza(&completed_fragment(X471_RSVP_FORM));
    let (node, id, payload) = published(&iq);
    assert_eq!(node, "urn:xmpp:calendar-events:0/picnics");
    assert_eq!(id.as_deref(), Some("picnic_ab123"));
    let ev = round_trip_event(&payload);
    let form = &ev.rsvp[0].form;
    assert_eq!(ev.rsvp[0].lang, None);
    let vars: Vec<&str> = form
        .fields
        .iter()
        .filter_map(|f| f.var.as_deref())
        .collect();
    assert_eq!(
        vars,
        [
            "FORM_TYPE",
            "attending",
            "participants_number",
            "{https://example.org/some_software}restrictions"
        ]
    );
    assert_eq!(form.value(PARTICIPANTS_FIELD), Some("1"));
    // The SDK's standard form plus the participants field says the same thing.
    let ours = RsvpForm::standard(EventNamespace::Current)
        .with_participants_number("Number of persons comming (including you)");
    assert_eq!(ours.form.fields[1].var, form.fields[1].var);
    assert_eq!(ours.form.fields[1].options, form.fields[1].options);
    assert_eq!(ours.form.fields[2].label, form.fields[2].label);
}

#[test]
fn x471_rsvp_answer() {
    let iq = stanza(X471_RSVP_ANSWER);
    let (node, id, attachments) = published(&iq);
    assert_eq!(id.as_deref(), Some("romeo@montague.lit"));
    // The example's node is the bare target-item URI (no `urn:xmpp:pubsub-attachments:1/` prefix, and
    // the 0.1.0 events namespace in the node name); it still names the target item.
    let uri = XmppUri::parse(&node).expect("uri");
    assert_eq!(
        uri.item_ref(),
        Some(ItemRef::new(
            jid("pubsub.capulet.lit"),
            "urn:xmpp:events:0/picnics",
            "picnic_ab123"
        ))
    );
    // As printed, <attachments/> has no namespace of its own (it inherits the pubsub one), so it is not a
    // XEP-0470 payload; the <rsvp/> inside is.
    assert!(matches!(
        RsvpAnswer::from_attachments(&attachments),
        Err(ParseError::WrongElement { .. })
    ));
    let rsvp = child(&attachments, "rsvp", NS_CALENDAR_EVENTS);
    let answer = RsvpAnswer::parse(rsvp).expect("rsvp");
    assert_eq!(answer.attending(), Some(Attending::Yes));
    assert_eq!(answer.increment(), 1);
    assert_eq!(answer.form.kind, FormType::Submit);
    // The example's FORM_TYPE value has a stray '>' (`<value>>urn:...`): kept as written.
    assert_eq!(
        answer.form.form_type(),
        Some(">urn:xmpp:calendar-events:rsvp:0")
    );
    assert_eq!(
        answer
            .form
            .value("{https://example.org/some_software}restrictions"),
        Some("no")
    );
    assert_eq!(
        RsvpAnswer::parse(&answer.to_element()).expect("reparse"),
        answer
    );

    // With both mistakes fixed, the payload reads as the XEP's text describes it.
    let fixed = X471_RSVP_ANSWER
        .replace(
            "<attachments>",
            "<attachments xmlns='urn:xmpp:pubsub-attachments:1'>",
        )
        .replace("<value>>urn", "<value>urn");
    let (_, _, attachments) = published(&stanza(&fixed));
    let answer = RsvpAnswer::from_attachments(&attachments)
        .expect("valid")
        .expect("an rsvp");
    assert_eq!(answer.form.form_type(), Some(FORM_RSVP));
    let merged = answer.merge_into_attachments(None);
    assert!(merged.is("attachments", NS_ATTACHMENTS));
    assert_eq!(strip_ws(&merged), strip_ws(&attachments));
    assert_eq!(
        RsvpAnswer::from_attachments(&merged).expect("ok"),
        Some(answer)
    );
}

#[test]
fn x471_rsvp_summary() {
    let iq = stanza(X471_RSVP_SUMMARY);
    let items = child(child(&iq, "pubsub", NS_PUBSUB), "items", NS_PUBSUB);
    assert_eq!(
        items.attr("node"),
        Some(summary_node_name("urn:xmpp:calendar-events:0/picnics").as_str())
    );
    let item = child(items, "item", NS_PUBSUB);
    assert_eq!(item.attr("id"), Some("picnic_ab123"));
    let summary = item.children().next().expect("summary");
    let s = AttendeesSummary::from_summary(summary)
        .expect("valid")
        .expect("attendees");
    assert_eq!(
        s,
        AttendeesSummary {
            confirmed: 5,
            max: 7
        }
    );
    let el = s.to_element(EventNamespace::Current);
    assert_eq!(
        strip_ws(&el),
        strip_ws(child(summary, "attendees", NS_CALENDAR_EVENTS))
    );
    assert_eq!(AttendeesSummary::parse(&el).expect("reparse"), s);
}

#[test]
fn x471_private_rsvp() {
    let msg = stanza(X471_PRIVATE_RSVP);
    let answer = RsvpAnswer::from_message(&msg)
        .expect("an rsvp")
        .expect("valid");
    assert_eq!(answer.attending(), Some(Attending::Yes));
    let payloads = answer.private_message_payloads();
    assert_eq!(RsvpAnswer::parse(&payloads[0]).expect("reparse"), answer);
    assert_eq!(
        strip_ws(&payloads[1]),
        strip_ws(child(&msg, "store", "urn:xmpp:hints"))
    );
    assert_eq!(
        strip_ws(&payloads[0]),
        strip_ws(child(&msg, "rsvp", NS_CALENDAR_EVENTS))
    );
}

#[test]
fn x471_invitees() {
    // Not well-formed as published: `</items` lacks its '>'.
    assert!(xmpp_social::xml::parse_bounded(X471_INVITEES, 1 << 20).is_err());
    let fixed = X471_INVITEES.replace("</items\n", "</items>\n");
    let iq = stanza(&fixed);
    let page = xmpp_social::pubsub::parse::parse_items_result(child(&iq, "pubsub", NS_PUBSUB))
        .expect("items");
    assert_eq!(page.node, "urn:xmpp:calendar-events:invitees:0/2022_ball");
    // The printed <invitee/> has no namespace, although the text says it is qualified by
    // 'urn:xmpp:calendar-events:0': a parser must refuse it as it stands...
    let first = page.items[0].payload.as_ref().expect("payload");
    assert!(matches!(
        Invitee::parse(first),
        Err(ParseError::WrongElement { .. })
    ));
    // ...and reads it with the namespace the text gives.
    let fixed = fixed.replace("<invitee ", "<invitee xmlns='urn:xmpp:calendar-events:0' ");
    let iq = stanza(&fixed);
    let page = xmpp_social::pubsub::parse::parse_items_result(child(&iq, "pubsub", NS_PUBSUB))
        .expect("items");
    let invitees: Vec<Invitee> = page
        .items
        .iter()
        .map(|i| Invitee::parse(i.payload.as_ref().expect("payload")).expect("invitee"))
        .collect();
    assert_eq!(
        invitees,
        [
            Invitee {
                jid: jid("nurse@capulet.lit"),
                name: Some("Nurse".into())
            },
            Invitee {
                jid: jid("tybalt@capulet.lit"),
                name: Some("Tybalt".into())
            },
        ]
    );
    for (inv, item) in invitees.iter().zip(&page.items) {
        let el = inv.to_element(EventNamespace::Current);
        assert_eq!(&el, item.payload.as_ref().expect("payload"));
        assert_eq!(&Invitee::parse(&el).expect("reparse"), inv);
    }
}

#[test]
fn x471_external_link() {
    let iq = stanza(X471_EXTERNAL_LINK);
    let (node, _, payload) = published(&iq);
    assert_eq!(node, NS_CALENDAR_EVENTS);
    let ev = round_trip_event(&payload);
    let target = ItemRef::new(
        jid("pubsub.capulet.lit"),
        "urn:xmpp:calendar-events:0/balls",
        "2022_ball",
    );
    assert_eq!(ev.external.as_ref(), Some(&target));
    // What `add_to_agenda` would publish for the ball of the "Organising an Event" example.
    let ball = Event::try_from(
        &published(&stanza(
            &X471_ORGANISING_EVENT.replace("xml:lang=en ", "xml:lang='en' "),
        ))
        .2,
    )
    .expect("ball");
    assert_eq!(Event::link_to(&ball, target), ev);
    assert_eq!(strip_ws(&Element::from(&ev)), strip_ws(&payload));
}

#[test]
fn x471_disco() {
    const NS_INFO: &str = "http://jabber.org/protocol/disco#info";
    for req in [X471_DISCO_REQUEST_CLIENT, X471_DISCO_REQUEST_SERVICE] {
        let iq = stanza(req);
        assert_eq!(iq.attr("type"), Some("get"));
        assert!(child(&iq, "query", NS_INFO).children().next().is_none());
    }
    for resp in [X471_DISCO_RESPONSE_CLIENT, X471_DISCO_RESPONSE_SERVICE] {
        let iq = stanza(resp);
        let features: Vec<&str> = child(&iq, "query", NS_INFO)
            .children()
            .filter_map(|f| f.attr("var"))
            .collect();
        assert_eq!(features, [NS_CALENDAR_EVENTS]);
    }
}

// ---------------------------------------------------------------------------------------------
// XEP-0346 examples
// ---------------------------------------------------------------------------------------------

const ACCIDENT_REPORT: &str = "stan.isode.net/accidentreport";

#[test]
fn x346_discover_nodes() {
    let [req, res] = <[Element; 2]>::try_from(stanzas(X346_DISCOVER_NODES)).expect("two stanzas");
    let ns = "http://jabber.org/protocol/disco#items";
    assert_eq!(
        strip_ws(child(&req, "query", ns)),
        Element::bare("query", ns)
    );
    let found = lists_from_disco_items(child(&res, "query", ns)).expect("items");
    assert_eq!(found.len(), 1, "one form, from its template node");
    assert_eq!(
        found[0].list,
        ListRef::new(jid("pubsub.stan.isode.net"), ACCIDENT_REPORT)
    );
    assert_eq!(found[0].name.as_deref(), Some("AccidentReport"));
    assert_eq!(
        found[0].list.template_node(),
        "fdp/template/stan.isode.net/accidentreport"
    );
    assert_eq!(
        found[0].list.submitted_node(),
        "fdp/submitted/stan.isode.net/accidentreport"
    );
    assert_eq!(
        ListRef::from_node(
            jid("pubsub.stan.isode.net"),
            "fdp/submitted/stan.isode.net/accidentreport"
        ),
        Some(found[0].list.clone())
    );
    assert_eq!(
        ListRef::from_node(jid("pubsub.stan.isode.net"), "urn:xmpp:microblog:0"),
        None
    );
}

fn accident_template() -> ListTemplate {
    let [_, res] = <[Element; 2]>::try_from(stanzas(X346_FETCH_TEMPLATE)).expect("two stanzas");
    let page = xmpp_social::pubsub::parse::parse_items_result(child(&res, "pubsub", NS_PUBSUB))
        .expect("items");
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.items[0].id, "version01");
    ListTemplate::parse(page.items[0].payload.as_ref().expect("payload")).expect("template")
}

#[test]
fn x346_fetch_template() {
    let [req, _] = <[Element; 2]>::try_from(stanzas(X346_FETCH_TEMPLATE)).expect("two stanzas");
    let list = ListRef::new(jid("pubsub.stan.isode.net"), ACCIDENT_REPORT);
    let q = ItemsQuery {
        max_items: Some(1),
        ..ItemsQuery::default()
    };
    assert_eq!(
        strip_ws(&request::get_items(&list.template_node(), &q)),
        strip_ws(child(&req, "pubsub", NS_PUBSUB))
    );
    let t = accident_template();
    assert_eq!(t.form.kind, FormType::Form);
    assert_eq!(t.form.title.as_deref(), Some("Accident report form."));
    assert_eq!(
        t.form.instructions,
        ["Please fill in all fields to complete this accident report."]
    );
    let cols: Vec<(&str, &str)> = t
        .columns()
        .map(|f| {
            (
                f.var.as_deref().unwrap_or(""),
                f.kind.as_deref().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        cols,
        [
            ("Place", "list-single"),
            ("Type", "text-single"),
            ("Ambulance", "boolean")
        ]
    );
    assert_eq!(t.form.field("Place").expect("Place").options.len(), 3);
    assert_eq!(t.kind(), None, "not a Libervia list");
    assert_eq!(ListTemplate::parse(&t.to_element()).expect("reparse"), t);
}

#[test]
fn x346_submit_form() {
    let iq = stanza(X346_SUBMIT_FORM);
    let (node, id, payload) = published(&iq);
    assert_eq!(node, "fdp/submitted/stan.isode.net/accidentreport");
    assert_eq!(id.as_deref(), Some(""));
    let item = Item {
        id: String::new(),
        publisher: None,
        payload: Some(payload.clone()),
    };
    let entry = ListEntry::from_item(&item).expect("entry");
    assert_eq!(entry.form.kind, FormType::Submit);
    assert_eq!(entry.value("Place"), Some("Kitchen"));
    assert_eq!(entry.value("Type"), Some("Ankle"));
    assert_eq!(entry.value("Ambulance"), Some("1"));
    assert_eq!(
        DataForm::parse(&entry.form.to_element()).expect("reparse"),
        entry.form
    );
    serde_json::to_value(&entry).expect("json");
    // The SDK builds the same submission from the template of "User fetches a template".
    let ours = accident_template()
        .submission(
            &ItemValues::new()
                .set("Place", "Kitchen")
                .set("Type", "Ankle")
                .set("Ambulance", "1"),
            None,
        )
        .expect("valid");
    for var in ["Place", "Type", "Ambulance"] {
        assert_eq!(ours.value(var), entry.value(var));
        assert_eq!(
            ours.field(var).and_then(|f| f.kind.clone()),
            entry.form.field(var).and_then(|f| f.kind.clone())
        );
    }
    // ...and refuses what the template does not allow.
    let t = accident_template();
    for bad in [
        ItemValues::new().set("Place", "Garden"),
        ItemValues::new().set("Ambulance", "maybe"),
        ItemValues::new().set("Colour", "red"),
        ItemValues::new().set_multi("Type", vec!["a".into(), "b".into()]),
    ] {
        assert!(
            matches!(t.submission(&bad, None), Err(Error::InvalidArgument(_))),
            "{bad:?}"
        );
    }
}

#[test]
fn x346_subscribe() {
    let iq = stanza(X346_SUBSCRIBE);
    let list = ListRef::new(jid("pubsub.stan.isode.net"), ACCIDENT_REPORT);
    assert_eq!(
        strip_ws(&request::subscribe(
            &list.submitted_node(),
            &jid("sysop@stan.isode.net/763be9c30f8ee893")
        )),
        strip_ws(child(&iq, "pubsub", NS_PUBSUB))
    );
}

#[test]
fn x346_publish_template() {
    let iq = stanza(X346_PUBLISH_TEMPLATE);
    let (node, id, payload) = published(&iq);
    let list = ListRef::new(jid("pubsub.stan.isode.net"), ACCIDENT_REPORT);
    assert_eq!(node, list.template_node());
    assert_eq!(id.as_deref(), Some("version01"));
    let t = ListTemplate::parse(&payload).expect("template");
    assert_eq!(t, accident_template());
    assert_eq!(ListTemplate::parse(&t.to_element()).expect("reparse"), t);
}

#[test]
fn x346_disco_identity() {
    const NS_INFO: &str = "http://jabber.org/protocol/disco#info";
    let req = stanza(X346_FDP_DISCO_REQUEST);
    assert_eq!(
        strip_ws(child(&req, "query", NS_INFO)),
        Element::bare("query", NS_INFO)
    );
    let res = stanza(X346_FDP_DISCO_RESPONSE);
    let q = child(&res, "query", NS_INFO);
    let info = DiscoInfo {
        identities: q
            .children()
            .filter(|c| c.name() == "identity")
            .map(|c| {
                (
                    c.attr("category").unwrap_or_default().to_owned(),
                    c.attr("type").unwrap_or_default().to_owned(),
                )
            })
            .collect(),
        features: q
            .children()
            .filter_map(|c| c.attr("var").map(str::to_owned))
            .collect(),
    };
    assert!(is_fdp_service(&info));
    assert!(!is_fdp_service(&DiscoInfo::default()));
}

// ---------------------------------------------------------------------------------------------
// Libervia 0.9 payloads, templates, malformed input
// ---------------------------------------------------------------------------------------------

/// An event as Libervia 0.9 writes it (`urn:xmpp:events:0`, no description `type`, its own form
/// namespaces), shape taken from its `event create`.
const LIBERVIA_EVENT: &str = "<event xmlns='urn:xmpp:events:0'>\
    <name xml:lang='en'>Picnic</name><name xml:lang='fr'>Pique-nique</name>\
    <start>2023-06-01T10:00:00Z</start><end>2023-06-01T16:00:00Z</end>\
    <description xml:lang='en'>Bring food</description>\
    <description xml:lang='fr'><div xmlns='http://www.w3.org/1999/xhtml'><p>Apportez à manger</p></div></description>\
    <location id='main'><geoloc xmlns='http://jabber.org/protocol/geoloc' xml:lang='en'><locality>Park</locality></geoloc></location>\
    <rsvp xml:lang='en'><x xmlns='jabber:x:data' type='form'>\
      <field var='FORM_TYPE' type='hidden'><value>urn:xmpp:events:rsvp:0</value></field>\
      <field var='attending' type='list-single' label='Attending'><option label='maybe'><value>maybe</value></option>\
      <option label='yes'><value>yes</value></option><option label='no'><value>no</value></option><required/></field></x></rsvp>\
    <extra><x xmlns='jabber:x:data' type='result'>\
      <field var='FORM_TYPE' type='hidden'><value>urn:xmpp:events:extra:0</value></field>\
      <field var='status'><value>tentative</value></field>\
      <field var='languages' type='list-multi'><value>en</value><value>fr</value></field></x></extra>\
    <link xmlns='urn:example:libervia' service='pubsub.example.org' node='n' item='i'/>\
    </event>";

#[test]
fn reads_libervia_events() {
    let el: Element = LIBERVIA_EVENT.parse().expect("xml");
    let ev = round_trip_event(&el);
    assert_eq!(ev.ns, EventNamespace::Legacy);
    assert_eq!(ev.name(Some("fr")), Some("Pique-nique"));
    assert_eq!(ev.descriptions[0].plain_text(), "Bring food");
    assert_eq!(ev.descriptions[1].plain_text(), "Apportez à manger");
    assert_eq!(ev.rsvp[0].form.form_type(), Some("urn:xmpp:events:rsvp:0"));
    let extra = ev.extra.as_ref().expect("extra");
    assert_eq!(extra.status, Some(EventStatus::Tentative));
    assert_eq!(extra.languages, ["en", "fr"]);
    assert_eq!(ev.other.len(), 1, "unknown children are kept");
    // Written back in its own namespace, with the forms' FORM_TYPEs unchanged.
    let out = Element::from(&ev);
    assert_eq!(out.ns(), "urn:xmpp:events:0");
    // Converted to the current namespace, the RSVP form follows.
    let current = ev.clone().in_namespace(EventNamespace::Current);
    assert_eq!(current.rsvp[0].form.form_type(), Some(FORM_RSVP));
    assert_eq!(Element::from(&current).ns(), NS_CALENDAR_EVENTS);
    // A Libervia RSVP answer.
    let a: Element = "<attachments xmlns='urn:xmpp:pubsub-attachments:1'>\
        <rsvp xmlns='urn:xmpp:events:0' timestamp='2023-05-01T10:00:00Z'><x xmlns='jabber:x:data' type='submit'>\
        <field var='FORM_TYPE' type='hidden'><value>urn:xmpp:events:rsvp:0</value></field>\
        <field var='attending'><value>maybe</value></field></x></rsvp></attachments>"
        .parse()
        .expect("xml");
    let answer = RsvpAnswer::from_attachments(&a).expect("ok").expect("rsvp");
    assert_eq!(answer.ns, EventNamespace::Legacy);
    assert_eq!(answer.attending(), Some(Attending::Maybe));
    assert_eq!(answer.timestamp, Some(date("2023-05-01T10:00:00Z")));
}

#[test]
fn ready_made_templates() {
    for (name, t) in [
        ("grocery", ListTemplate::grocery()),
        ("todo", ListTemplate::todo()),
        ("tickets", ListTemplate::tickets()),
    ] {
        assert_eq!(ListTemplate::by_name(name), Some(t.clone()));
        assert_eq!(t.kind(), Some(name));
        assert_eq!(t.form.form_type(), Some(LIBERVIA_LIST_NS));
        assert_eq!(ListTemplate::parse(&t.to_element()).expect("reparse"), t);
        assert!(t.columns().all(|c| c.kind.as_deref() != Some("hidden")));
    }
    let g = ListTemplate::grocery();
    let form = g
        .submission(&ItemValues::new().set("name", "milk"), None)
        .expect("valid");
    assert_eq!(form.value("status"), Some("to_buy"));
    assert_eq!(form.form_type(), Some(LIBERVIA_LIST_NS));
    // Update: given values over the existing entry.
    let ticked = g
        .submission(&ItemValues::new().set("status", "bought"), Some(&form))
        .expect("valid");
    assert_eq!(ticked.value("name"), Some("milk"));
    assert_eq!(ticked.value("status"), Some("bought"));
    // Required name; no hidden fields.
    assert!(g.submission(&ItemValues::new(), None).is_err());
    assert!(g
        .submission(
            &ItemValues::new().set("name", "x").set("FORM_TYPE", "y"),
            None
        )
        .is_err());
    // text-multi values are split in lines.
    let t = ListTemplate::todo()
        .submission(
            &ItemValues::new().set("title", "t").set("body", "a\nb"),
            None,
        )
        .expect("valid");
    assert_eq!(t.field("body").expect("body").values, ["a", "b"]);
}

#[test]
fn list_view_as_a_multi_item_form() {
    let t = ListTemplate::grocery();
    let items: Vec<Item> = ["milk", "eggs"]
        .iter()
        .enumerate()
        .map(|(i, name)| Item {
            id: format!("id{i}"),
            publisher: Some(jid("alice@example.org")),
            payload: Some(
                t.submission(&ItemValues::new().set("name", *name), None)
                    .expect("valid")
                    .to_element(),
            ),
        })
        .chain([Item {
            id: "bad".into(),
            publisher: None,
            payload: Some(Element::bare("junk", "urn:example")),
        }])
        .collect();
    let view = xmpp_social::lists::ListView::from_items(
        ListRef::new(jid("pubsub.example.org"), "example.org/groceries"),
        Some(t),
        &items,
    );
    assert_eq!(view.entries.len(), 2);
    assert_eq!(view.invalid.len(), 1);
    let form = view.to_data_form();
    assert_eq!(form.kind, FormType::Result);
    let cols: Vec<&str> = form
        .reported
        .iter()
        .filter_map(|f| f.var.as_deref())
        .collect();
    assert_eq!(cols, ["name", "quantity", "status"]);
    assert_eq!(form.items.len(), 2);
    assert_eq!(form.items[1][0].value(), Some("eggs"));
    // It is a valid XEP-0004 multi-item result.
    assert_eq!(DataForm::parse(&form.to_element()).expect("reparse"), form);
    let json = serde_json::to_value(&view).expect("json");
    assert_eq!(json["entries"][0]["fields"]["name"][0], "milk");
}

#[test]
fn malformed_events_are_typed_errors() {
    let ns = "xmlns='urn:xmpp:calendar-events:0'";
    let times = "<start>2022-09-05T12:00:00Z</start><end>2022-09-05T13:00:00Z</end>";
    let ok = format!("<event {ns}><name>x</name>{times}</event>");
    assert!(ok.parse::<Event>().is_ok());
    type Check = fn(&ParseError) -> bool;
    let cases: Vec<(String, Check)> = vec![
        (
            format!("<event {ns}>{times}</event>"),
            |e| matches!(e, ParseError::MissingChild { child: "name", .. }),
        ),
        (
            format!("<event {ns}><name>x</name><end>2022-09-05T13:00:00Z</end></event>"),
            |e| matches!(e, ParseError::MissingChild { child: "start", .. }),
        ),
        (
            format!("<event {ns}><name>x</name><start>tomorrow</start><end>2022-09-05T13:00:00Z</end></event>"),
            |e| matches!(e, ParseError::InvalidValue { element: "start", .. }),
        ),
        (
            format!("<event {ns}><name>x</name><name>y</name>{times}</event>"),
            |e| matches!(e, ParseError::InvalidValue { element: "name", .. }),
        ),
        (
            format!("<event {ns}><name>x</name>{times}{times}</event>"),
            |e| matches!(e, ParseError::InvalidValue { element: "start", .. }),
        ),
        (
            format!("<event {ns}><name>x</name>{times}<category/></event>"),
            |e| matches!(e, ParseError::MissingAttribute { element: "category", attribute: "term" }),
        ),
        (
            format!("<event {ns}><name>x</name>{times}<invitees node='n'/></event>"),
            |e| matches!(e, ParseError::MissingAttribute { element: "invitees", attribute: "jid" }),
        ),
        (
            format!("<event {ns}><name>x</name>{times}<blog jid='a@b@c' node='n'/></event>"),
            |e| matches!(e, ParseError::InvalidValue { element: "blog", .. }),
        ),
        (
            format!("<event {ns}><name>x</name>{times}<external jid='p.example' node='n'/></event>"),
            |e| matches!(e, ParseError::MissingAttribute { element: "external", attribute: "item" }),
        ),
        (
            format!("<event {ns}><name>x</name>{times}<description type='xhtml'>plain</description></event>"),
            |e| matches!(e, ParseError::MissingChild { element: "description", child: "div" }),
        ),
        (
            format!("<event {ns}><name>x</name>{times}<description type='html'>a</description></event>"),
            |e| matches!(e, ParseError::InvalidValue { element: "description@type", .. }),
        ),
        (
            format!("<event {ns}><name>x</name>{times}<location><geoloc xmlns='http://jabber.org/protocol/geoloc'><lat>north</lat></geoloc></location></event>"),
            |e| matches!(e, ParseError::InvalidValue { element: "geoloc", .. }),
        ),
        (
            format!("<event {ns}><name>x</name>{times}<location><online><name>n</name></online></location></event>"),
            |e| matches!(e, ParseError::MissingChild { element: "online", child: "instructions" }),
        ),
        (
            format!("<event {ns}><name>x</name>{times}<location id='a'/><location id='a'/></event>"),
            |e| matches!(e, ParseError::InvalidValue { element: "location", .. }),
        ),
        (
            format!("<event {ns}><name>x</name>{times}<rsvp/></event>"),
            |e| matches!(e, ParseError::MissingChild { element: "rsvp", child: "x" }),
        ),
        (
            format!("<event {ns}><name>x</name>{times}<rsvp><x xmlns='jabber:x:data' type='nonsense'/></rsvp></event>"),
            |e| matches!(e, ParseError::InvalidValue { .. }),
        ),
        (
            format!("<event {ns}><name>x</name>{times}<head-picture/></event>"),
            |e| matches!(e, ParseError::MissingChild { element: "head-picture", .. }),
        ),
        (
            format!("<event {ns}><name>x</name>{times}<extra/></event>"),
            |e| matches!(e, ParseError::MissingChild { element: "extra", child: "x" }),
        ),
        (
            "<event xmlns='urn:example:other'/>".to_owned(),
            |e| matches!(e, ParseError::WrongElement { .. }),
        ),
        (
            format!("<event {ns}><name>{}</name>{times}</event>", "x".repeat(300 * 1024)),
            |e| matches!(e, ParseError::TooLarge { .. }),
        ),
        (
            format!("<event {ns}><name>x</name>{times}{}</event>", "<category term='t'/>".repeat(1100)),
            |e| matches!(e, ParseError::TooLarge { .. }),
        ),
        (
            format!("<event {ns}><name>x</name>{times}{}{}</event>", "<a>".repeat(70), "</a>".repeat(70)),
            |e| matches!(e, ParseError::TooLarge { .. }),
        ),
        ("<event".to_owned(), |e| matches!(e, ParseError::Xml(_))),
    ];
    for (xml, expected) in cases {
        match xml.parse::<Event>() {
            Ok(ev) => panic!("accepted {}: {ev:?}", &xml[..xml.len().min(200)]),
            Err(e) => assert!(
                expected(&e),
                "unexpected error {e:?} for {}",
                &xml[..xml.len().min(200)]
            ),
        }
    }
    // Events that parse but would break a MUST are refused before publishing.
    let mut ev: Event = ok.parse().expect("ok");
    ev.end = date("2022-09-05T11:00:00Z");
    assert!(ev.validate().is_err());
    ev.end = ev.start;
    ev.names.clear();
    assert!(ev.validate().is_err());
}

#[test]
fn malformed_list_payloads_are_typed_errors() {
    let bad_items = [
        Item {
            id: "a".into(),
            publisher: None,
            payload: None,
        },
        Item {
            id: "b".into(),
            publisher: None,
            payload: Some(Element::bare("entry", "http://www.w3.org/2005/Atom")),
        },
        Item {
            id: "c".into(),
            publisher: None,
            payload: Some("<x xmlns='jabber:x:data'/>".parse().expect("xml")),
        },
    ];
    for item in &bad_items {
        assert!(ListEntry::from_item(item).is_err(), "{item:?}");
    }
    let not_a_form: Element = "<x xmlns='urn:example'/>".parse().expect("xml");
    assert!(matches!(
        ListTemplate::parse(&not_a_form),
        Err(ParseError::WrongElement { .. })
    ));
    let bad_disco: Element = "<query xmlns='http://jabber.org/protocol/disco#items'>\
        <item jid='not@a@jid' node='fdp/template/x'/></query>"
        .parse()
        .expect("xml");
    assert!(matches!(
        lists_from_disco_items(&bad_disco),
        Err(ParseError::InvalidValue { .. })
    ));
}

// ---------------------------------------------------------------------------------------------
// On Prosody and ejabberd
// ---------------------------------------------------------------------------------------------

// Accounts registered after start (`common::register`) are not admins of pubsub.localhost on Prosody, so
// node permissions apply to them.

fn bare(c: &XmppClient) -> BareJid {
    xmpp_social::Connection::jid(c).to_bare()
}

async fn event_invite_rsvp_summary(kind: ServerKind) {
    let server = start(kind).await;
    let alice = login(&server, "alice").await;
    let bob = login(&server, "bob").await;
    let carol = login(&server, "carol").await;
    let dave = register(&server, "dave").await;
    let service = jid(server.pubsub_service());

    let event = Event::new(
        "Garden party",
        date("2026-07-04T16:00:00+02:00"),
        date("2026-07-04T23:00:00+02:00"),
    )
    .with_rsvp(
        RsvpForm::standard(EventNamespace::Current)
            .with_participants_number("People coming, you included"),
    );
    let item = alice
        .create_event(
            Some(&service),
            Some(&events_node("garden")),
            event.clone(),
            CreateEventOptions::default(),
        )
        .await
        .unwrap_or_else(|e| panic!("{kind:?}: create_event: {e}\n{}", server.log_tail(40)));
    assert_eq!(item.node, "urn:xmpp:calendar-events:0/garden");
    assert!(item.item.starts_with("garden-party-"), "{}", item.item);

    // Not invited yet: Dave can neither read the event nor answer it.
    let e = dave.event(&item).await.expect_err("whitelisted event");
    assert!(e.stanza_error().is_some(), "{kind:?}: {e}");
    let e = dave
        .rsvp(&item, RsvpAnswer::new(Attending::Yes))
        .await
        .expect_err("not a publisher of the RSVP node");
    assert!(e.stanza_error().is_some(), "{kind:?}: {e}");

    for (who, name) in [(&bob, "Bob"), (&carol, "Carol")] {
        alice
            .invite(
                &item,
                &bare(who).into(),
                InviteOptions {
                    name: Some(name.into()),
                    ..InviteOptions::default()
                },
            )
            .await
            .unwrap_or_else(|e| panic!("{kind:?}: invite {name}: {e}\n{}", server.log_tail(40)));
    }
    let invitees = alice.invitees(&item).await.expect("invitees");
    let names: BTreeSet<_> = invitees.iter().filter_map(|i| i.name.clone()).collect();
    assert_eq!(
        names,
        BTreeSet::from(["Bob".to_owned(), "Carol".to_owned()])
    );

    // Bob reads the event as Alice wrote it, and answers yes for two; Carol maybe.
    let seen = bob.event(&item).await.expect("bob reads the event");
    assert_eq!(seen.event.names, event.names);
    assert_eq!(seen.event.rsvp, event.rsvp);
    assert!(seen.event.invitees.is_some());
    bob.rsvp(&item, RsvpAnswer::new(Attending::Yes).with_participants(2))
        .await
        .unwrap_or_else(|e| panic!("{kind:?}: bob rsvp: {e}\n{}", server.log_tail(40)));
    carol
        .rsvp(&item, RsvpAnswer::new(Attending::Maybe))
        .await
        .unwrap_or_else(|e| panic!("{kind:?}: carol rsvp: {e}"));

    let att = alice.attendees(&item).await.expect("attendees");
    assert!(att.invalid.is_empty(), "{kind:?}: {:?}", att.invalid);
    assert_eq!(
        att.summary,
        AttendeesSummary {
            confirmed: 2,
            max: 3
        },
        "{kind:?}"
    );
    assert_eq!(
        att.answer_of(&bare(&bob)).and_then(RsvpAnswer::attending),
        Some(Attending::Yes)
    );
    assert_eq!(
        att.answer_of(&bare(&carol)).and_then(RsvpAnswer::attending),
        Some(Attending::Maybe)
    );
    // Invitees see the same count.
    assert_eq!(
        carol.attendees(&item).await.expect("carol").summary,
        att.summary
    );
    serde_json::to_value(&att).expect("json");

    // Bob changes his mind: his answer is replaced, not added.
    bob.rsvp(&item, RsvpAnswer::new(Attending::Maybe))
        .await
        .expect("bob again");
    let att = alice.attendees(&item).await.expect("attendees");
    assert_eq!(att.answers.len(), 2);
    assert_eq!(
        att.summary,
        AttendeesSummary {
            confirmed: 0,
            max: 2
        }
    );

    // Once invited, Dave reads and answers (no: counted as nothing).
    alice
        .invite(&item, &bare(&dave).into(), InviteOptions::default())
        .await
        .expect("invite dave");
    dave.event(&item).await.expect("dave reads the event");
    dave.rsvp(&item, RsvpAnswer::new(Attending::No))
        .await
        .unwrap_or_else(|e| panic!("{kind:?}: dave rsvp: {e}\n{}", server.log_tail(40)));
    let att = alice.attendees(&item).await.expect("attendees");
    assert_eq!(att.answers.len(), 3);
    assert_eq!(
        att.summary,
        AttendeesSummary {
            confirmed: 0,
            max: 2
        }
    );
    assert_eq!(att.with_answer(Attending::No).len(), 1);

    // Carol withdraws; Bob puts the event in his own agenda.
    carol.withdraw_rsvp(&item).await.expect("withdraw");
    let att = bob.attendees(&item).await.expect("attendees");
    assert!(att.answer_of(&bare(&carol)).is_none());
    assert_eq!(
        att.summary,
        AttendeesSummary {
            confirmed: 0,
            max: 1
        }
    );
    let link = bob
        .add_to_agenda(&item)
        .await
        .unwrap_or_else(|e| panic!("{kind:?}: add_to_agenda: {e}\n{}", server.log_tail(40)));
    let agenda = bob.events(None, None, None).await.expect("agenda");
    let mine = agenda
        .events
        .iter()
        .find(|e| e.item.item == link.item)
        .expect("linked event");
    assert_eq!(mine.event.external.as_ref(), Some(&item));
    assert_eq!(mine.event.start, event.start);

    // An open event in Libervia's namespace: anyone may answer, and answers follow the namespace.
    let legacy = alice
        .create_event(
            Some(&service),
            Some(&events_node("open")),
            event.clone().in_namespace(EventNamespace::Legacy),
            CreateEventOptions {
                access: AccessModel::Open,
                invitees_node: false,
                ..CreateEventOptions::default()
            },
        )
        .await
        .unwrap_or_else(|e| panic!("{kind:?}: legacy event: {e}"));
    assert_eq!(
        dave.event(&legacy).await.expect("open").event.ns,
        EventNamespace::Legacy
    );
    dave.rsvp(
        &legacy,
        RsvpAnswer::new(Attending::Yes).with_participants(3),
    )
    .await
    .unwrap_or_else(|e| panic!("{kind:?}: rsvp to an open event: {e}"));
    let att = alice.attendees(&legacy).await.expect("attendees");
    assert_eq!(
        att.summary,
        AttendeesSummary {
            confirmed: 3,
            max: 3
        }
    );
    assert_eq!(att.answers[0].answer.ns, EventNamespace::Legacy);
    assert_eq!(
        att.answers[0].answer.form.form_type(),
        Some("urn:xmpp:events:rsvp:0")
    );

    // Alice lists her events node, then deletes the event.
    let all = alice
        .events(Some(&service), Some(&item.node), None)
        .await
        .expect("events");
    assert_eq!(all.events.len(), 1);
    assert!(all.invalid.is_empty());
    alice.delete_event(&item).await.expect("delete");
    assert!(alice
        .events(Some(&service), Some(&item.node), None)
        .await
        .expect("events")
        .events
        .is_empty());

    for c in [alice, bob, carol, dave] {
        let _ = c.close().await;
    }
}

async fn shared_grocery_list(kind: ServerKind) {
    let server = start(kind).await;
    let alice = login(&server, "alice").await;
    let bob = login(&server, "bob").await;
    let dave = register(&server, "dave").await;
    let service = jid(server.pubsub_service());

    let list = alice
        .create_list(
            Some(&service),
            &ListRef::libervia_app("groceries"),
            &ListTemplate::grocery(),
            ListOptions::default(),
        )
        .await
        .unwrap_or_else(|e| panic!("{kind:?}: create_list: {e}\n{}", server.log_tail(40)));
    assert_eq!(
        list.submitted_node(),
        "fdp/submitted/org.salut-a-toi.tickets:0_groceries"
    );
    assert!(alice
        .find_lists(Some(&service))
        .await
        .expect("disco")
        .contains(&list));
    // Bob co-owns the list: on every server he may then tick anyone's entries (the dave part below
    // shows plain editors).
    alice
        .share_list(&list, &bare(&bob).into(), ListAccess::Manage)
        .await
        .unwrap_or_else(|e| panic!("{kind:?}: share: {e}\n{}", server.log_tail(40)));

    // Bob adds two items, Alice one; Bob ticks Alice's item and one of his.
    let template = bob
        .list_template(&list)
        .await
        .expect("bob reads the template");
    assert_eq!(template, ListTemplate::grocery());
    let milk = bob
        .add_item(
            &list,
            ItemValues::new().set("name", "milk").set("quantity", "2"),
        )
        .await
        .unwrap_or_else(|e| panic!("{kind:?}: bob adds: {e}\n{}", server.log_tail(40)));
    let bread = bob
        .add_item(&list, ItemValues::new().set("name", "bread"))
        .await
        .expect("bread");
    let eggs = alice
        .add_item(
            &list,
            ItemValues::new().set("name", "eggs").set("quantity", "12"),
        )
        .await
        .expect("eggs");
    bob.update_item(&list, &eggs.id, ItemValues::new().set("status", "bought"))
        .await
        .unwrap_or_else(|e| {
            panic!(
                "{kind:?}: bob ticks alice's item: {e}\n{}",
                server.log_tail(40)
            )
        });
    bob.update_item(&list, &milk.id, ItemValues::new().set("status", "bought"))
        .await
        .expect("tick milk");
    assert!(matches!(
        bob.update_item(&list, &bread.id, ItemValues::new().set("status", "stolen"))
            .await,
        Err(Error::InvalidArgument(_))
    ));

    let state = |v: &xmpp_social::lists::ListView| -> BTreeSet<(String, String, String, String)> {
        v.entries
            .iter()
            .map(|e| {
                (
                    e.id.clone(),
                    e.value("name").unwrap_or_default().to_owned(),
                    e.value("quantity").unwrap_or_default().to_owned(),
                    e.value("status").unwrap_or_default().to_owned(),
                )
            })
            .collect()
    };
    let a = alice.list(&list, None).await.expect("alice's view");
    let b = bob.list(&list, None).await.expect("bob's view");
    assert!(a.invalid.is_empty() && b.invalid.is_empty());
    assert_eq!(state(&a), state(&b), "{kind:?}: both see the same list");
    let expected: BTreeSet<_> = [
        (&milk.id, "milk", "2", "bought"),
        (&bread.id, "bread", "", "to_buy"),
        (&eggs.id, "eggs", "12", "bought"),
    ]
    .into_iter()
    .map(|(i, n, q, s)| (i.clone(), n.to_owned(), q.to_owned(), s.to_owned()))
    .collect();
    assert_eq!(state(&a), expected, "{kind:?}");
    assert_eq!(a.to_data_form().items.len(), 3);
    assert_eq!(b.entries_where("status", "bought").count(), 2);
    serde_json::to_value(&a).expect("json");

    // Dave (not an admin on either server) gets exactly what the list is shared with him for.
    assert!(
        dave.list(&list, None).await.is_err(),
        "{kind:?}: not shared yet"
    );
    alice
        .share_list(&list, &bare(&dave).into(), ListAccess::Read)
        .await
        .expect("share read");
    assert_eq!(
        state(&dave.list(&list, None).await.expect("dave reads")),
        expected
    );
    let e = dave
        .add_item(&list, ItemValues::new().set("name", "cake"))
        .await
        .expect_err("a reader cannot add");
    assert!(e.stanza_error().is_some(), "{kind:?}: {e}");
    alice
        .share_list(&list, &bare(&dave).into(), ListAccess::Edit)
        .await
        .expect("share edit");
    let cake = dave
        .add_item(&list, ItemValues::new().set("name", "cake"))
        .await
        .unwrap_or_else(|e| panic!("{kind:?}: an editor adds: {e}"));
    dave.update_item(&list, &cake.id, ItemValues::new().set("quantity", "1"))
        .await
        .unwrap_or_else(|e| panic!("{kind:?}: an editor edits their entry: {e}"));
    let view = alice.list(&list, None).await.expect("list");
    let entry = view.entry(&cake.id).expect("cake");
    assert_eq!(
        (entry.value("name"), entry.value("quantity")),
        (Some("cake"), Some("1"))
    );
    // Someone else's entry: the server's rule (Prosody: any publisher; ejabberd: its publisher or an
    // owner).
    let r = dave
        .update_item(&list, &bread.id, ItemValues::new().set("status", "bought"))
        .await;
    match kind {
        ServerKind::Prosody => {
            r.unwrap_or_else(|e| panic!("Prosody: an editor overwrites: {e}"));
        }
        ServerKind::Ejabberd => {
            let e = r.expect_err("ejabberd: only the publisher or an owner overwrites");
            assert!(e.is_condition(DefinedCondition::Forbidden), "{e}");
            bob.update_item(&list, &bread.id, ItemValues::new().set("status", "bought"))
                .await
                .expect("the author ticks");
        }
    }
    let view = bob.list(&list, None).await.expect("list");
    assert_eq!(
        view.entry(&bread.id).and_then(|e| e.value("status")),
        Some("bought")
    );
    alice
        .share_list(&list, &bare(&dave).into(), ListAccess::Revoke)
        .await
        .expect("revoke");
    assert!(dave.list(&list, None).await.is_err(), "{kind:?}: revoked");

    // Removing an entry.
    bob.remove_item(&list, &bread.id).await.expect("remove");
    assert!(alice
        .list(&list, None)
        .await
        .expect("list")
        .entry(&bread.id)
        .is_none());

    for c in [alice, bob, dave] {
        let _ = c.close().await;
    }
}

on_both_servers!(event_invite_rsvp_summary, shared_grocery_list);
