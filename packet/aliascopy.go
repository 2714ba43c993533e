package packet

// AliasCopy is scratch space for writing a PUBLISH with a Topic Alias
// without changing the caller's packet: a sender's PUBLISH may be kept for
// a resend (which must carry the full topic) and its Properties shared by
// many packets, so the alias goes on a copy that is encoded at once. The
// client and the broker both alias this way.
type AliasCopy struct {
	pub   Publish
	props Properties
	alias uint16
}

// Set returns a copy of p carrying Topic Alias alias, with an empty topic
// when aliasOnly (the alias was set earlier on this connection). The copy
// is valid until the next Set on c.
func (c *AliasCopy) Set(p *Publish, alias uint16, aliasOnly bool) *Publish {
	c.pub = *p
	if p.Props != nil {
		c.props = *p.Props
	} else {
		c.props = Properties{}
	}
	c.alias = alias
	c.props.TopicAlias = &c.alias
	c.pub.Props = &c.props
	if aliasOnly {
		c.pub.Topic = ""
	}
	return &c.pub
}
