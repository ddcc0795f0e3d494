with

transactions as (

    select * from {{ ref('stg_bank__transactions') }}

),

final as (

    select
        transaction_id,
        account_id,
        occurred_at,
        amount,
        merchant_category,
        channel,
        is_fraud

    from transactions

)

select * from final
