"""What tests share: a throwaway nbgrader course (`workspace`), placing submissions (`submissions`)."""
