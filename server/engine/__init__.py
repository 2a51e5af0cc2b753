"""The conversation engine: a turn takes a conversation's pending messages, its mode picks who
answers (``turns``), and every reply, whoever writes it, goes out one way (``replies``).

- ``turns``: claim the pending messages in order, dispatch by the conversation's mode;
- ``ai``: the grounded assistant's turn (loop guard, answer, usage);
- ``handoff``: leaving a turn, or the conversation, to the humans;
- ``replies``: the one way a reply is written (message, outbox row, journey step); the task that
  ran the turn schedules its delivery once the transaction has committed.
"""
