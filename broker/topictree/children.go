package topictree

import "iter"

// listMax is how many children a node keeps in a plain slice before it
// switches to a map. Most nodes of a device fleet's tree have one or a few
// children (devices/<id>/cmd), and a short slice costs far less memory than
// a map while being as fast to search at that size.
const listMax = 8

type child[T any] struct {
	level string
	n     *T
}

// children maps a topic level to a child node: a short slice while small, a
// map once large.
type children[T any] struct {
	list []child[T]
	m    map[string]*T
}

func (c *children[T]) get(level string) *T {
	if c.m != nil {
		return c.m[level]
	}
	for i := range c.list {
		if c.list[i].level == level {
			return c.list[i].n
		}
	}
	return nil
}

func (c *children[T]) set(level string, n *T) {
	if c.m != nil {
		c.m[level] = n
		return
	}
	for i := range c.list {
		if c.list[i].level == level {
			c.list[i].n = n
			return
		}
	}
	if len(c.list) < listMax {
		c.list = append(c.list, child[T]{level, n})
		return
	}
	c.m = make(map[string]*T, 2*listMax)
	for _, ch := range c.list {
		c.m[ch.level] = ch.n
	}
	c.m[level] = n
	c.list = nil
}

func (c *children[T]) del(level string) {
	if c.m != nil {
		delete(c.m, level)
		return
	}
	for i := range c.list {
		if c.list[i].level == level {
			last := len(c.list) - 1
			c.list[i] = c.list[last]
			c.list[last] = child[T]{}
			c.list = c.list[:last]
			if last == 0 {
				c.list = nil
			}
			return
		}
	}
}

func (c *children[T]) len() int {
	if c.m != nil {
		return len(c.m)
	}
	return len(c.list)
}

// all yields every (level, child) pair in no particular order.
func (c *children[T]) all() iter.Seq2[string, *T] {
	return func(yield func(string, *T) bool) {
		if c.m != nil {
			for l, n := range c.m {
				if !yield(l, n) {
					return
				}
			}
			return
		}
		for _, ch := range c.list {
			if !yield(ch.level, ch.n) {
				return
			}
		}
	}
}

// nextLevel splits the first topic level off s. more reports whether a '/'
// followed it, so "a/" gives ("a", "", true): an empty last level is a level.
func nextLevel(s string) (level, rest string, more bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == '/' {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}
